/* conf.h - configuration: YAML files bound to C structs by option tables.
 *
 * Each daemon (and each pluggable part: bus, store, sinks) declares its
 * options as data, a `struct lh_opt` array ending in `{0}`:
 *
 *   struct spool_config { char *dir; uint64_t segment_bytes; int64_t fsync_ms; };
 *   static const struct lh_opt spool_opts[] = {
 *       { LH_OPT_STR,  "dir", "./var/spool", offsetof(struct spool_config, dir),
 *         "directory of the spool" },
 *       { LH_OPT_SIZE, "segment_size", "64MiB", offsetof(struct spool_config, segment_bytes),
 *         "bytes per segment file" },
 *       { 0 }
 *   };
 *
 * One loader serves all daemons: it parses YAML (libyaml), expands
 * ${ENV_VAR} and ${ENV_VAR:-default} in scalar values, applies defaults for
 * absent keys, and fails on unknown keys, wrong types, missing required keys
 * and bad enum values with a message naming file, line and dotted key path:
 *   "collector.yaml:12: listen.adress: unknown key (known: address, tls)"
 * The same tables render help text (`--help-config`). */
#ifndef LH_CONF_H
#define LH_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lh/err.h"

enum lh_opt_type {
    LH_OPT_END = 0,   /* terminates a table */
    LH_OPT_STR,       /* char *: owned copy, NULL when absent and no default */
    LH_OPT_INT,       /* int64_t; decimal, may be negative */
    LH_OPT_DOUBLE,    /* double */
    LH_OPT_BOOL,      /* int: true/false/yes/no/on/off/1/0 */
    LH_OPT_SIZE,      /* uint64_t bytes: 4096, "64k"/"64KiB", "1M"/"1MiB", "2G"/"2GiB" (powers of 1024) */
    LH_OPT_DURATION,  /* int64_t milliseconds: "250ms", "2s", "5m", "1h", "7d"; a bare integer is seconds */
    LH_OPT_ENUM,      /* int: index of the value in .choices ("spool|kafka") */
    LH_OPT_STRLIST,   /* struct lh_strlist: a sequence of scalars (a lone scalar is a list of one) */
    LH_OPT_STRMAP,    /* struct lh_strmap: a mapping of scalar -> scalar, kept in file order */
    LH_OPT_SECTION,   /* a nested mapping bound with .sub into the struct at .offset */
    LH_OPT_LIST,      /* struct lh_conf_list: a sequence of mappings, each bound with .sub
                         into a zeroed item of .item_size bytes */
};

#define LH_OPT_REQUIRED (1u << 0)  /* absent key is an error */
#define LH_OPT_SECRET   (1u << 1)  /* never printed (tokens, keys) */

struct lh_opt {
    enum lh_opt_type type;
    const char *key;
    const char *def;           /* default as YAML text; NULL: zero/NULL */
    size_t offset;             /* offsetof() in the bound struct */
    const char *help;
    unsigned flags;            /* LH_OPT_* */
    const struct lh_opt *sub;  /* SECTION, LIST */
    size_t item_size;          /* LIST */
    const char *choices;       /* ENUM: "a|b|c" */
};

struct lh_strlist {
    char **v;
    size_t n;
};

struct lh_strmap {
    char **keys;
    char **values;
    size_t n;
};

struct lh_conf_list {
    void *items;   /* n items of item_size bytes, each bound with the sub table */
    size_t n;
};

/* Loads path and binds it into out (zeroed by the caller, or already
 * holding nothing that needs freeing). On failure out is left freed (all
 * strings released) and err says file:line: key: what. */
int lh_conf_load_file(const char *path, const struct lh_opt *opts, void *out,
                      struct lh_err *err);

/* The same for YAML text in memory; name is used in messages. */
int lh_conf_load_string(const char *name, const char *yaml, size_t len,
                        const struct lh_opt *opts, void *out, struct lh_err *err);

/* Frees every string, list and map the loader allocated inside out, and
 * zeroes those fields. Safe on a zeroed struct and to call twice. */
void lh_conf_free(const struct lh_opt *opts, void *out);

/* Writes a commented YAML sample of every option with its default and help. */
void lh_conf_print_help(FILE *f, const struct lh_opt *opts);

/* Helpers for the typed fields, also used on their own (e.g. CLI flags). */
int lh_conf_parse_size(const char *s, uint64_t *out);
int lh_conf_parse_duration_ms(const char *s, int64_t *out);
int lh_conf_parse_bool(const char *s, int *out);

/* The lookup in a strmap; NULL when absent. */
const char *lh_strmap_get(const struct lh_strmap *m, const char *key);

#endif
