"""pyexec's BPF maps on this host, as bpftool map list shows them."""

from __future__ import annotations

from dataclasses import dataclass

from ._shim import ffi, lib
from .errors import check

MAX_MAPS = 256


@dataclass(frozen=True)
class MapInfo:
    id: int
    name: str
    type: str
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    btf_id: int
    memlock: int  # bytes
    entries: int | None  # keys in use; None for arrays, which are always full

    @property
    def fill(self) -> float | None:
        """Entries in use as a share of max_entries."""
        return None if self.entries is None else self.entries / self.max_entries


def list_maps() -> list[MapInfo]:
    """The maps of every pyexec counter loaded on this host (root needed)."""
    infos = ffi.new("struct pyexec_map_info[]", MAX_MAPS)
    found = ffi.new("unsigned int *")
    # Walking the host's maps by id (BPF_MAP_GET_NEXT_ID) is for CAP_SYS_ADMIN alone.
    check(lib.pyexec_list_maps(infos, MAX_MAPS, found), "list the BPF maps", ("CAP_SYS_ADMIN",))
    return [
        MapInfo(
            id=info.id,
            name=ffi.string(info.name).decode(),
            type=ffi.string(lib.pyexec_map_type_name(info.type)).decode(),
            key_size=info.key_size,
            value_size=info.value_size,
            max_entries=info.max_entries,
            flags=info.flags,
            btf_id=info.btf_id,
            memlock=info.memlock,
            entries=None if info.entries < 0 else info.entries,
        )
        for info in infos[0 : found[0]]
    ]
