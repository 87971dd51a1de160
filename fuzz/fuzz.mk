# fuzz/fuzz.mk - builds the fuzz targets; fuzz/run.sh and fuzz/regress.sh
# call it (make -f fuzz/fuzz.mk MODE=fuzz|regress), from the repo root.
#   MODE=fuzz     clang libFuzzer binaries in build-fuzz/bin/ (lib/*.c with
#                 -fsanitize=fuzzer-no-link,address,undefined)
#   MODE=regress  plain binaries in build-fuzz/regress/bin/ whose main runs
#                 every file given once (fuzz/regress_main.c); ASan+UBSan
#                 unless SAN=0.

MODE ?= fuzz
SAN ?= 1
OUT := build-fuzz
PKGS := libmicrohttpd jansson sqlite3 libcurl openssl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS := $(shell pkg-config --libs $(PKGS))
BASE := -std=c11 -g -D_GNU_SOURCE -Ilib/include -Ilib -fno-omit-frame-pointer

ifeq ($(MODE),fuzz)
CC := $(or $(FUZZ_CC),clang)
DIR := $(OUT)
SANF := -fsanitize=address,undefined -fno-sanitize-recover=all
LIB_CFLAGS := $(BASE) -O1 $(SANF) -fsanitize=fuzzer-no-link
TGT_CFLAGS := $(BASE) -O1 $(SANF) -fsanitize=fuzzer -Wall -Wextra -Werror
TGT_LDFLAGS := $(SANF) -fsanitize=fuzzer -pthread
MAIN_OBJ :=
else
CC := $(or $(REGRESS_CC),cc)
DIR := $(OUT)/regress
SANF := $(if $(filter 1,$(SAN)),-fsanitize=address,undefined -fno-sanitize-recover=all)
LIB_CFLAGS := $(BASE) -O1 $(SANF)
TGT_CFLAGS := $(BASE) -O1 $(SANF) -Wall -Wextra -Werror
TGT_LDFLAGS := $(SANF) -pthread
MAIN_OBJ := $(DIR)/obj/fuzz/regress_main.o
endif

# lib/ is not ours to hold to -Werror under clang: warnings stay visible.
LIB_SRCS := $(wildcard lib/*.c)
LIB_OBJS := $(patsubst %.c,$(DIR)/obj/%.o,$(LIB_SRCS))
LIB_A := $(DIR)/libcommon.a
TARGETS := $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))
BINS := $(addprefix $(DIR)/bin/,$(TARGETS))

all: $(BINS)

$(DIR)/obj/lib/%.o: lib/%.c
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) -Wall -Wextra $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(DIR)/obj/fuzz/%.o: fuzz/%.c
	@mkdir -p $(@D)
	$(CC) $(TGT_CFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(LIB_A): $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(DIR)/bin/%: $(DIR)/obj/fuzz/%.o $(MAIN_OBJ) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(TGT_LDFLAGS) $^ $(PKG_LIBS) -o $@

.PHONY: all
.SECONDARY:

-include $(shell find $(DIR)/obj -name '*.d' 2>/dev/null)
