/* mask.h - PII masking, shared by the agent (scrub at the edge) and the
 * indexer (scrub before anything is written).
 *
 * Built-in detectors are hand-written scanners (they run over every
 * message, so they avoid the regex engine): e-mail addresses and payment
 * card numbers (13-19 digits starting with a card brand's 2-6, optionally
 * grouped by single spaces or dashes, that pass the Luhn check and do not
 * sit inside a longer run of digits: epoch timestamps start with 1). Extra detectors are PCRE2 patterns (JIT-compiled) from config.
 * A masker is immutable after creation and may be shared by threads; each
 * thread passes its own output buffer. */
#ifndef LH_MASK_H
#define LH_MASK_H

#include <stddef.h>

#include "lh/buf.h"
#include "lh/conf.h"
#include "lh/err.h"

struct lh_mask_pattern {
    char *name;          /* for metrics: masked_total{rule="name"} */
    char *regex;         /* PCRE2 syntax */
    char *replacement;   /* literal text; default "[REDACTED]" */
};

struct lh_mask_config {
    int emails;                    /* default on */
    int cards;                     /* default on */
    char *email_replacement;       /* default "[EMAIL]" */
    char *card_replacement;        /* default "[CARD]" */
    struct lh_conf_list patterns;  /* of struct lh_mask_pattern */
};

/* The `mask:` section's option table. */
extern const struct lh_opt lh_mask_opts[];

struct lh_masker;

/* Compiles cfg (copied; cfg may be freed afterwards). Errors name the bad
 * pattern and PCRE2's message with its offset. */
int lh_masker_create(const struct lh_mask_config *cfg, struct lh_masker **out,
                     struct lh_err *err);
void lh_masker_destroy(struct lh_masker *m);

/* Number of rules: 0 = email, 1 = card, then the patterns in order. */
size_t lh_masker_rule_count(const struct lh_masker *m);
const char *lh_masker_rule_name(const struct lh_masker *m, size_t rule);

/* Masks s[0..n). Returns the number of replacements made (0: out is left
 * untouched and the caller keeps s), or a negative LH_E* code. On a
 * positive return out holds the masked text (reset first, NUL-terminated).
 * counts, if not NULL, has lh_masker_rule_count() slots and is incremented
 * per rule. Thread-safe. */
int lh_mask_apply(const struct lh_masker *m, const char *s, size_t n, struct lh_buf *out,
                  unsigned long *counts);

/* The Luhn check over the digits of s[0..n) (other characters ignored). */
int lh_luhn_valid(const char *s, size_t n);

#endif
