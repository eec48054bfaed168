# tinyalign — build, deps, test, bench, quickstart.
#   make              build build/tinyalign (release: -O3, OpenMP, OpenBLAS OpenMP build)
#   make deps         install missing Debian packages (apt-get), skip what is present
#   make test         deps + build + the whole suite; last line "N passed, N failed"
#   make bench        speed benchmarks against PyTorch in the same run (not a test)
#   make bench-mpi    data parallel: the ordered gradient sum per model shape, 2 ranks x 1
#                     thread vs 1 rank x 2 threads on the small model (tools/bench_mpi.sh)
#   make quickstart   deps + build + train a tokenizer and a tiny GPT-2 on fortunes
#   make install      PREFIX/bin/tinyalign + PREFIX/share/tinyalign/tools (PREFIX=/usr/local;
#                     DESTDIR for staging); make uninstall removes exactly those files
#   make debug | asan debug (-O0 -g) / AddressSanitizer+UBSan builds in build/debug, build/asan
#   make asan-test    the suite against the AddressSanitizer+UBSan build (build/asan)
#   make fuzz         libFuzzer targets (clang) over the parsers, FUZZ_SECONDS each (default 60)
#   NO_OMP=1 make ... build without OpenMP (everything still passes)
#   make MPI=1        build/tinyalign with MPI (data parallel: mpirun -np N build/tinyalign train)
#                     By default build/tinyalign has no MPI and, when `mpicc --showme` finds
#                     an MPI library, build/tinyalign-mpi is linked beside it from the same
#                     objects plus src/train/dist_mpi.c; MPI=0 never looks for MPI.
# Flags are remembered in $(BUILD)/.flags: changing them rebuilds everything.

BUILD   ?= build
CC      ?= cc
CXX     ?= c++
OPT     ?= -O3 -march=native -fno-math-errno -fno-trapping-math
SANITIZE ?=
PYTHON  ?= /usr/bin/python3

ifeq ($(origin CC),default)
CC := gcc
endif
ifeq ($(origin CXX),default)
CXX := g++
endif

ifeq ($(NO_OMP),1)
OMPFLAGS := -Wno-unknown-pragmas
else
OMPFLAGS := -fopenmp
endif

# OpenBLAS: link the OpenMP build explicitly (Debian's default alternative is the pthread
# build, whose threads fight OpenMP's spinning threads; see README "Threads").
BLASDIR := /usr/lib/x86_64-linux-gnu/openblas-openmp
ifeq ($(wildcard $(BLASDIR)/libopenblas.so.0),)
BLASDIR := $(dir $(firstword $(wildcard /usr/lib/*/openblas-openmp/libopenblas.so.0)))
endif
BLASLIB := -L$(BLASDIR) -l:libopenblas.so.0 -Wl,-rpath,$(BLASDIR)
BLASINC := $(shell pkg-config --cflags openblas 2>/dev/null)

SPM_CFLAGS := $(shell pkg-config --cflags sentencepiece 2>/dev/null)
SPM_VERSION := $(shell pkg-config --modversion sentencepiece 2>/dev/null || echo unknown)
SPM_LIBS   := $(shell pkg-config --libs sentencepiece sentencepiece_train 2>/dev/null || echo -lsentencepiece -lsentencepiece_train)
CJSON_CFLAGS := $(shell pkg-config --cflags libcjson 2>/dev/null)
CJSON_LIBS   := $(shell pkg-config --libs libcjson 2>/dev/null || echo -lcjson)
ZLIB_CFLAGS  := $(shell pkg-config --cflags zlib 2>/dev/null)
ZLIB_LIBS    := $(shell pkg-config --libs zlib 2>/dev/null || echo -lz)
# oneDNN (Debian libdnnl-dev): the matmul backend for bf16 (and optionally fp32).
DNNL_LIBS    := -ldnnl

# MPI: only src/train/dist_mpi.c sees mpi.h; the rest of the engine calls dist.h, which
# src/train/dist_single.c implements for one process (in libtinyalign.a).
ifneq ($(MPI),0)
MPI_CFLAGS := $(shell mpicc --showme:compile 2>/dev/null)
MPI_LIBS   := $(shell mpicc --showme:link 2>/dev/null)
endif
ifeq ($(MPI),1)
ifeq ($(MPI_LIBS),)
$(error MPI=1 but `mpicc --showme:link` finds no MPI library: run `make deps` (libopenmpi-dev) or build without MPI=1)
endif
endif

WARN     := -Wall -Wextra -Wno-unused-parameter
CFLAGS   := -std=c11 $(WARN) $(OPT) $(OMPFLAGS) $(SANITIZE) -Iinclude $(BLASINC) $(CJSON_CFLAGS) $(ZLIB_CFLAGS) -D_DEFAULT_SOURCE \
            -DTA_SPM_VERSION='"$(SPM_VERSION)"'
CXXFLAGS := -std=c++17 $(WARN) $(OPT) $(SANITIZE) -Iinclude $(SPM_CFLAGS)
LDFLAGS  := $(OMPFLAGS) $(SANITIZE)
LDLIBS   := $(BLASLIB) $(DNNL_LIBS) $(SPM_LIBS) $(CJSON_LIBS) $(ZLIB_LIBS) -lstdc++ -lm -lpthread

LIB_C   := $(filter-out src/cli/main.c src/train/dist_mpi.c,$(sort $(shell find src -name '*.c')))
LIB_CC  := $(sort $(shell find src -name '*.cc'))
LIB_OBJ := $(LIB_C:src/%.c=$(BUILD)/obj/%.o) $(LIB_CC:src/%.cc=$(BUILD)/obj/%.o)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
FLAGS_STAMP := $(BUILD)/.flags
FLAGS_NOW := $(CC) $(CXX) $(CFLAGS) $(CXXFLAGS) $(LDFLAGS)
MPI_OBJ  := $(BUILD)/obj/train/dist_mpi.o
MPI_BIN  := $(if $(MPI_LIBS),$(BUILD)/tinyalign-mpi)
MPI_STAMP := $(BUILD)/.mpi

FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/%)
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 2

.PHONY: all deps test tests bench bench-mpi quickstart debug asan asan-test fuzz fuzz-build fuzz-bins \
	clean info install uninstall FORCE

all: $(BUILD)/tinyalign $(MPI_BIN)
	@$(BUILD)/tinyalign info
	@$(if $(MPI_BIN),echo "$$($(MPI_BIN) info | tail -1): $(MPI_BIN)")

$(FLAGS_STAMP): FORCE
	@mkdir -p $(BUILD)
	@echo '$(FLAGS_NOW)' | cmp -s - $@ || echo '$(FLAGS_NOW)' > $@

# whether build/tinyalign has MPI: switching relinks it
$(MPI_STAMP): FORCE
	@mkdir -p $(BUILD)
	@echo 'MPI=$(MPI)' | cmp -s - $@ || echo 'MPI=$(MPI)' > $@

$(BUILD)/obj/%.o: src/%.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: src/%.cc $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libtinyalign.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(MPI_OBJ): CFLAGS += $(MPI_CFLAGS)

ifeq ($(MPI),1)
$(BUILD)/tinyalign: $(BUILD)/obj/cli/main.o $(MPI_OBJ) $(BUILD)/libtinyalign.a $(MPI_STAMP)
	$(CC) $(LDFLAGS) $(filter %.o %.a,$^) -o $@ $(LDLIBS) $(MPI_LIBS)
else
$(BUILD)/tinyalign: $(BUILD)/obj/cli/main.o $(BUILD)/libtinyalign.a $(MPI_STAMP)
	$(CC) $(LDFLAGS) $(filter %.o %.a,$^) -o $@ $(LDLIBS)
endif

# dist_mpi.o comes before the archive, so the archive's dist_single.o is never pulled in
$(BUILD)/tinyalign-mpi: $(BUILD)/obj/cli/main.o $(MPI_OBJ) $(BUILD)/libtinyalign.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(MPI_LIBS)

# the all-reduce benchmark of tools/bench_mpi.sh (needs MPI)
$(BUILD)/bench_allreduce: tools/bench_allreduce.c $(MPI_OBJ) $(BUILD)/libtinyalign.a
	$(CC) $(CFLAGS) $(MPI_CFLAGS) $< $(MPI_OBJ) $(BUILD)/libtinyalign.a -o $@ $(LDFLAGS) $(LDLIBS) $(MPI_LIBS)

$(BUILD)/tests/%: tests/%.c $(wildcard tests/*.h) $(BUILD)/libtinyalign.a $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $< -o $@ $(BUILD)/libtinyalign.a $(LDFLAGS) $(LDLIBS)

# the replay of every fuzz seed and past finding also includes the fuzz targets
$(BUILD)/tests/test_fuzz_replay: $(FUZZ_SRC) tests/fuzz/fuzz.h

# libFuzzer binaries (only in the fuzz build: BUILD=build/fuzz, clang, see `fuzz`)
# (linked by the C++ driver: UBSan's C++ runtime checks the SentencePiece wrapper)
$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(BUILD)/libtinyalign.a $(FLAGS_STAMP)
	@mkdir -p $(BUILD)/obj/fuzz
	$(CC) $(CFLAGS) -Itests -c $< -o $(BUILD)/obj/fuzz/$*.o
	$(CXX) $(LDFLAGS) -fsanitize=fuzzer $(BUILD)/obj/fuzz/$*.o -o $@ $(BUILD)/libtinyalign.a $(LDLIBS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

info: $(BUILD)/tinyalign
	@$(BUILD)/tinyalign info

deps:
	@bash tools/deps.sh

tests: $(BUILD)/tinyalign $(TEST_BIN) $(MPI_BIN)

test: deps
	@$(MAKE) --no-print-directory tests
	@bash tests/run.sh $(BUILD)

bench: deps
	@$(MAKE) --no-print-directory all
	@bash tools/bench.sh $(BUILD)

bench-mpi: deps
	@$(MAKE) --no-print-directory all
	@bash tools/bench_mpi.sh $(BUILD)

quickstart: deps
	@$(MAKE) --no-print-directory all
	@bash tools/quickstart.sh $(BUILD)

debug:
	@$(MAKE) --no-print-directory BUILD=build/debug OPT="-O0 -g" all

ASAN_FLAGS := BUILD=build/asan OPT="-O1 -g -fno-omit-frame-pointer" \
	    SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
asan:
	@$(MAKE) --no-print-directory $(ASAN_FLAGS) all

# The suite against build/asan: every C test and the shell tests that exercise parsing,
# checkpoints, resume and the training step (ASAN_TESTS; the others only add minutes of
# sanitized matmuls). Leak checking is off: a CLI that exits on an error frees nothing.
ASAN_TESTS ?= test_checkpoint test_cli test_common test_config test_dataset test_safetensors \
	test_shard test_fuzz_replay test_objective test_gpt2 test_sample test_curate \
	cli/train cli/faults cli/inputs cli/state cli/objectives
asan-test:
	@$(MAKE) --no-print-directory $(ASAN_FLAGS) tests
	@OMP_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:detect_stack_use_after_return=0 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    TA_ONLY="$(ASAN_TESTS)" bash tests/run.sh build/asan

# libFuzzer (Debian's clang): the library built with ASan + UBSan + coverage, without
# OpenMP (clang would need libomp); each target runs FUZZ_SECONDS, FUZZ_JOBS at a time;
# a finding (crash, sanitizer report, oracle, timeout) fails and is saved under
# build/fuzz/findings/ (commit it under tests/fuzz/regress/<target>/ once fixed).
FUZZ_FLAGS := BUILD=build/fuzz CC=clang CXX=clang++ NO_OMP=1 \
	    OPT="-O1 -g -fno-omit-frame-pointer" \
	    SANITIZE="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined"
fuzz-build:
	@command -v clang >/dev/null && command -v clang++ >/dev/null || { echo "make fuzz needs \
	    Debian's clang (apt-get install clang libclang-rt-14-dev)"; exit 2; }
	@$(MAKE) --no-print-directory $(FUZZ_FLAGS) fuzz-bins
fuzz-bins: $(FUZZ_BIN)
fuzz: fuzz-build
	@bash tests/fuzz/run.sh build/fuzz $(FUZZ_SECONDS) $(FUZZ_JOBS)

# Install: the binary (OpenBLAS is found through its rpath, so it runs from any directory)
# and the Python tools it or the README runs from anywhere: plot.py (`tinyalign plot`) and
# hf_gpt2.py (loading an exported model in PyTorch).
PREFIX  ?= /usr/local
DESTDIR ?=
INSTALL_BIN   := $(DESTDIR)$(PREFIX)/bin
INSTALL_SHARE := $(DESTDIR)$(PREFIX)/share/tinyalign
INSTALL_TOOLS := tools/plot.py tools/hf_gpt2.py

install: $(BUILD)/tinyalign
	install -d "$(INSTALL_BIN)" "$(INSTALL_SHARE)/tools"
	install -m 755 $(BUILD)/tinyalign "$(INSTALL_BIN)/tinyalign"
	install -m 644 $(INSTALL_TOOLS) "$(INSTALL_SHARE)/tools/"
	@echo "installed $(INSTALL_BIN)/tinyalign and $(INSTALL_SHARE)/tools/{$(notdir $(INSTALL_TOOLS))}"

uninstall:
	rm -f "$(INSTALL_BIN)/tinyalign" $(addprefix "$(INSTALL_SHARE)/tools/,$(addsuffix ",$(notdir $(INSTALL_TOOLS))))
	-rmdir "$(INSTALL_SHARE)/tools" "$(INSTALL_SHARE)" 2>/dev/null || true

clean:
	rm -rf build
