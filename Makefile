# pyexec's pipeline: Debian packages -> libbpf (vendored, static, PIC)
# -> vmlinux.h -> BPF object -> skeleton -> cffi extension, installed in .venv.
SHELL := /bin/bash
.DEFAULT_GOAL := build

CLANG ?= clang-19
CLANG_PKG ?= $(CLANG)
LLVM_PKG ?= $(subst clang,llvm,$(CLANG_PKG))
BPFTOOL ?= bpftool
PYTHON ?= python3
# vendored (default) or system: build against the distribution's libbpf
# (prebuilt: make wheel's, at LIBBPF_PREFIX).
LIBBPF ?= vendored
export LIBBPF

BUILD := build
VENV := .venv
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
DEB_PACKAGES := $(CLANG_PKG) $(LLVM_PKG) bpftool libelf-dev zlib1g-dev pkg-config python3-venv gcc libc6-dev
ifeq ($(LIBBPF),system)
DEB_PACKAGES += libbpf-dev
endif

LIBBPF_VERSION := $(shell sed -n 's/^VERSION=//p' vendor/libbpf/manifest)
LIBBPF_PREFIX ?= $(BUILD)/libbpf
LIBBPF_A := $(LIBBPF_PREFIX)/lib/libbpf.a
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/' -e 's/ppc64le/powerpc/' -e 's/s390x/s390/' -e 's/riscv64/riscv/')

ifeq ($(LIBBPF),system)
LIBBPF_DEP := $(BUILD)/system-libbpf.ok
BPF_INCLUDES := -I$(BUILD) -Icsrc
else ifeq ($(LIBBPF),prebuilt)
# make wheel: libbpf is built already, for the wheel, at LIBBPF_PREFIX.
LIBBPF_DEP :=
BPF_INCLUDES := -I$(BUILD) -Icsrc -I$(LIBBPF_PREFIX)/include
else
LIBBPF_DEP := $(LIBBPF_A)
BPF_INCLUDES := -I$(BUILD) -Icsrc -I$(LIBBPF_PREFIX)/include
endif

.PHONY: deps check-deps build artifacts run test lint test-wheel test-kernels load-times bench wheel daemonset sdist clean

## deps: install the missing Debian packages (quiet when none is missing)
deps:
	@scripts/deps.sh $(DEB_PACKAGES)

# For a build that pip runs (build.py): says what is missing, installs nothing.
check-deps:
	@scripts/deps.sh --check $(DEB_PACKAGES)

# pyexec's BPF programs: each is csrc/NAME.bpf.c, its contract csrc/NAME.h and
# its loader csrc/NAME.c; the rules below make build/NAME.skel.h of each.
PROGRAMS := execcount floor
SKELETONS := $(PROGRAMS:%=$(BUILD)/%.skel.h)
# What every program's BPF side includes.
BPF_SHARED := csrc/exec.bpf.h csrc/contract.h
# What the extension compiles: the shared C and every loader.
SHIM_SOURCES := $(wildcard csrc/*.c csrc/*.h)

## artifacts: everything the cffi build reads (build.py calls this)
artifacts: $(SKELETONS) $(BUILD)/programs.h $(LIBBPF_DEP)

# The list of programs in C, for what walks them all (pyexec maps).
$(BUILD)/programs.h: Makefile
	@mkdir -p $(@D)
	@{ echo '/* Made by make from PROGRAMS. */'; echo '#define PYEXEC_PROGRAMS $(foreach program,$(PROGRAMS),X($(program)))'; } > $@.tmp && mv $@.tmp $@

# libbpf: Debian's copy of the pinned upstream source, checked against its
# sha256 (fetched once, checked every time), built static and position-
# independent to link into the extension.
$(LIBBPF_A): vendor/libbpf/manifest scripts/fetch-source.sh
	@tarball=$$(scripts/fetch-source.sh vendor/libbpf $(BUILD)/apt) && \
		rm -rf $(BUILD)/libbpf-src && mkdir -p $(BUILD)/libbpf-src && \
		tar -xf "$$tarball" -C $(BUILD)/libbpf-src --strip-components=1
	@echo "  LIBBPF   $(LIBBPF_VERSION)"
	@$(MAKE) -s -C $(BUILD)/libbpf-src/src install_headers install BUILD_STATIC_ONLY=1 \
		EXTRA_CFLAGS='-fPIC -O2' OBJDIR=$(abspath $(BUILD)/libbpf-obj) \
		DESTDIR=$(abspath $(LIBBPF_PREFIX)) PREFIX= LIBDIR=/lib INCLUDEDIR=/include >/dev/null

# LIBBPF=system: the distribution's libbpf, if it is as new as the pinned one
# (the BPF program uses its open-coded iterators and bpf_core_cast).
$(BUILD)/system-libbpf.ok:
	@pkg-config --atleast-version=$(LIBBPF_VERSION) libbpf || { echo "build: LIBBPF=system needs libbpf $(LIBBPF_VERSION) or newer; this system has $$(pkg-config --modversion libbpf 2>/dev/null || echo none): build without LIBBPF=system to use the vendored one" >&2; exit 1; }
	@mkdir -p $(BUILD) && touch $@

# vmlinux.h: every kernel type, from the build host's BTF (CO-RE relocates at load).
$(BUILD)/vmlinux.h:
	@test -r $(VMLINUX_BTF) || { echo "build: $(VMLINUX_BTF) is missing: build on a kernel with CONFIG_DEBUG_INFO_BTF=y, or set VMLINUX_BTF to a BTF file" >&2; exit 1; }
	@mkdir -p $(BUILD)
	@echo "  VMLINUX  $@"
	@$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@.tmp && mv $@.tmp $@

# Each BPF object, compiled once for every kernel.
$(BUILD)/%.bpf.o: csrc/%.bpf.c csrc/%.h $(BPF_SHARED) $(BUILD)/vmlinux.h $(LIBBPF_DEP)
	@echo "  BPF      $@"
	@$(CLANG) -target bpf -g -O2 -Wall -D__TARGET_ARCH_$(ARCH) $(BPF_INCLUDES) -c $< -o $@

# Its skeleton embeds the object, so nothing is read from disk at run time.
$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	@echo "  SKEL     $@"
	@$(BPFTOOL) gen skeleton $< name $*_bpf > $@.tmp && mv $@.tmp $@
.PRECIOUS: $(BUILD)/%.bpf.o

# The extension and the package, installed editable in .venv.
$(VENV)/bin/python:
	@$(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install -q --upgrade pip setuptools wheel cffi

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml setup.py build.py $(SHIM_SOURCES) \
		$(SKELETONS) $(BUILD)/programs.h $(LIBBPF_DEP)
	@echo "  PIP      pyexec (editable) into $(VENV)"
	@$(VENV)/bin/pip install -q --no-build-isolation -e '.[test,lint]'
	@touch $@

# The package's bytecode, as a regular install writes it: an editable install
# leaves it to the first import, which may not write it (PYTHONDONTWRITEBYTECODE),
# and compiling the sources again costs every start-up about 20 ms.
$(VENV)/.compiled: $(VENV)/.installed $(wildcard pyexec/*.py)
	@$(VENV)/bin/python -m compileall -q pyexec
	@touch $@

## build: compile everything and install pyexec into .venv
build: deps
	@$(MAKE) -s $(VENV)/.compiled

## run: count executions until Ctrl-C (ARGS="--duration 10 --format json")
run: build
	$(VENV)/bin/pyexec run $(ARGS)

# What the tests use beside pyexec: a real Prometheus scrapes pyexec serve.
TEST_PACKAGES := prometheus

## test: the test suite, against the running kernel
test: build $(BUILD)/tests/sleeper
	@scripts/deps.sh $(TEST_PACKAGES)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

## lint: ruff on the Python, mypy on the package (it says it is typed)
lint: build
	$(VENV)/bin/ruff check pyexec tests bench scripts build.py
	$(VENV)/bin/mypy

# A static program the tests exec (a path walk must see it exec'd, whatever its libc).
$(BUILD)/tests/sleeper: tests/sleeper.c
	@mkdir -p $(@D)
	@$(CC) -static -O2 -o $@ $<

## test-wheel: the test suite against the wheel, installed in a fresh venv apart from the tree
test-wheel: wheel $(BUILD)/tests/sleeper
	@scripts/deps.sh $(TEST_PACKAGES)
	@tests/installed.sh test $(PYTEST_ARGS)

## test-kernels: the kernel matrix's tests, against the installed wheel, in each of Debian's kernels in qemu (KERNELS="5.10 6.1" for some)
test-kernels: wheel $(BUILD)/tests/sleeper
	@tests/kernels/run.sh $(KERNELS)

## load-times: the counter's load time in each kernel of the matrix, against BASELINE's; writes docs/load-times.md
BASELINE ?= 43745b5
load-times: build
	@bench/load-times.sh $(BASELINE) $(KERNELS)

## bench: pyexec next to bpftrace; writes docs/benchmarks.md
bench: build
	@scripts/deps.sh bpftrace
	$(VENV)/bin/python bench/run.py --output docs/benchmarks.md

## wheel: dist/pyexec_ebpf-*.whl, one manylinux_2_28 abi3 wheel that needs only glibc (scripts/dist.sh)
wheel: deps
	@scripts/dist.sh wheel dist

## daemonset: dist/daemonset.yaml, the DaemonSet installing that wheel and what it needs, each pinned by sha256
daemonset: wheel
	@scripts/daemonset.sh dist

## sdist: dist/pyexec_ebpf-*.tar.gz, which pip builds on a Debian machine with the build packages
sdist: deps
	@scripts/dist.sh sdist dist

clean:
	rm -rf $(BUILD) $(VENV) dist pyexec/_shim*.so *.egg-info .pytest_cache
