"""pyexec's BPF maps on this host, as bpftool map list shows them."""

from __future__ import annotations

from dataclasses import dataclass

from ._shim import ffi, lib
from .errors import Action, check

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
    """The maps of every pyexec program loaded on this host (root needed)."""
    infos = ffi.new("struct pyexec_map_info[]", MAX_MAPS)
    found = ffi.new("unsigned int *")
    # Walking the host's maps by id (BPF_MAP_GET_NEXT_ID) is for CAP_SYS_ADMIN alone.
    check(lib.pyexec_list_maps(infos, MAX_MAPS, found), Action("list the BPF maps", capabilities=("CAP_SYS_ADMIN",)))
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


def table(found: list[MapInfo]) -> Blocks:
    """One block per map, as bpftool map list writes them: its id, type and name,
    then its sizes, as many to a line as the width takes (none cut in two)."""
    blocks = []
    for info in found:
        sizes = [f"key {info.key_size}B", f"value {info.value_size}B", f"max_entries {info.max_entries}",
                 f"memlock {info.memlock}B", f"btf_id {info.btf_id}"]
        if info.entries is not None:
            sizes.append(f"entries {info.entries} ({info.fill:.1%} full)")
        blocks.append((f"{info.id}: {info.type}  name {info.name}", sizes))
    return Blocks(blocks)


class Blocks:
    """Blocks of a title and items, the items laid out per line to the width drawn at."""

    INDENT = "  "

    def __init__(self, blocks: list[tuple[str, list[str]]]) -> None:
        self.blocks = blocks

    def __rich_console__(self, console, options):
        from rich.text import Text

        from .report import printable

        room = max(options.max_width - len(self.INDENT), 1)
        for title, items in self.blocks:
            yield Text(printable(title), style="bold")
            lines = [""]
            for item in map(printable, items):
                if lines[-1] and len(lines[-1]) + 2 + len(item) > room:
                    lines.append("")
                lines[-1] += ("  " if lines[-1] else "") + item
            yield Text("\n".join(self.INDENT + line for line in lines))
