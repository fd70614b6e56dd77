/* mask.c - PII masking: e-mail and card-number scanners plus PCRE2 rules
 * (see lh/mask.h). Every detector reports spans over the original text;
 * overlapping spans are resolved (earliest, then longest, wins) and the
 * output is written once. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "lh/mask.h"

#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const struct lh_opt pattern_opts[] = {
    { LH_OPT_STR, "name", NULL, offsetof(struct lh_mask_pattern, name),
      "rule name, used in metrics", LH_OPT_REQUIRED },
    { LH_OPT_STR, "regex", NULL, offsetof(struct lh_mask_pattern, regex),
      "PCRE2 pattern; every match is replaced", LH_OPT_REQUIRED },
    { LH_OPT_STR, "replacement", "'[REDACTED]'", offsetof(struct lh_mask_pattern, replacement),
      "literal replacement text" },
    { 0 }
};

const struct lh_opt lh_mask_opts[] = {
    { LH_OPT_BOOL, "emails", "true", offsetof(struct lh_mask_config, emails),
      "mask e-mail addresses" },
    { LH_OPT_BOOL, "cards", "true", offsetof(struct lh_mask_config, cards),
      "mask payment card numbers (13-19 digits passing the Luhn check)" },
    { LH_OPT_STR, "email_replacement", "'[EMAIL]'",
      offsetof(struct lh_mask_config, email_replacement), "replacement for e-mail addresses" },
    { LH_OPT_STR, "card_replacement", "'[CARD]'",
      offsetof(struct lh_mask_config, card_replacement), "replacement for card numbers" },
    { .type = LH_OPT_LIST, .key = "patterns", .offset = offsetof(struct lh_mask_config, patterns),
      .help = "extra rules: name, regex, replacement", .sub = pattern_opts,
      .item_size = sizeof(struct lh_mask_pattern) },
    { 0 }
};

struct rule {
    char *name;
    char *replacement;
    size_t replacement_len;
    pcre2_code *re;          /* NULL for the built-in scanners */
};

struct lh_masker {
    int emails, cards;
    struct rule *rules;      /* [0] email, [1] card, then patterns */
    size_t nrules;
};

struct span {
    size_t start, end;
    size_t rule;
};

struct spans {
    struct span *v;
    size_t n, cap;
};

enum { RULE_EMAIL = 0, RULE_CARD = 1 };

static int spans_add(struct spans *s, size_t start, size_t end, size_t rule)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        struct span *v = realloc(s->v, cap * sizeof(*v));
        if (!v)
            return LH_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (struct span){ start, end, rule };
    return 0;
}

static int rule_init(struct rule *r, const char *name, const char *replacement)
{
    r->name = strdup(name);
    r->replacement = strdup(replacement ? replacement : "[REDACTED]");
    if (!r->name || !r->replacement)
        return LH_ENOMEM;
    r->replacement_len = strlen(r->replacement);
    return 0;
}

void lh_masker_destroy(struct lh_masker *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nrules; i++) {
        free(m->rules[i].name);
        free(m->rules[i].replacement);
        pcre2_code_free(m->rules[i].re);
    }
    free(m->rules);
    free(m);
}

int lh_masker_create(const struct lh_mask_config *cfg, struct lh_masker **out,
                     struct lh_err *err)
{
    *out = NULL;
    struct lh_masker *m = calloc(1, sizeof(*m));
    const struct lh_mask_pattern *pats = cfg->patterns.items;
    size_t n = 2 + cfg->patterns.n;
    if (!m || !(m->rules = calloc(n, sizeof(*m->rules)))) {
        free(m);
        return lh_err_set(err, LH_ENOMEM, "mask: out of memory");
    }
    m->nrules = n;
    m->emails = cfg->emails;
    m->cards = cfg->cards;
    int rc = rule_init(&m->rules[RULE_EMAIL], "email",
                       cfg->email_replacement ? cfg->email_replacement : "[EMAIL]");
    if (rc == 0)
        rc = rule_init(&m->rules[RULE_CARD], "card",
                       cfg->card_replacement ? cfg->card_replacement : "[CARD]");
    for (size_t i = 0; rc == 0 && i < cfg->patterns.n; i++) {
        struct rule *r = &m->rules[2 + i];
        rc = rule_init(r, pats[i].name ? pats[i].name : "pattern", pats[i].replacement);
        if (rc < 0)
            break;
        int ecode;
        PCRE2_SIZE eoff;
        r->re = pcre2_compile((PCRE2_SPTR)pats[i].regex, PCRE2_ZERO_TERMINATED, PCRE2_UTF,
                              &ecode, &eoff, NULL);
        if (!r->re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ecode, msg, sizeof(msg));
            rc = lh_err_set(err, LH_EINVAL, "mask pattern %s: %s at offset %zu", r->name,
                            (char *)msg, (size_t)eoff);
            break;
        }
        /* JIT is an optimisation: fall back to the interpreter if unavailable. */
        pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE);
    }
    if (rc < 0) {
        if (rc == LH_ENOMEM)
            lh_err_set(err, LH_ENOMEM, "mask: out of memory");
        lh_masker_destroy(m);
        return rc;
    }
    *out = m;
    return 0;
}

size_t lh_masker_rule_count(const struct lh_masker *m) { return m->nrules; }

const char *lh_masker_rule_name(const struct lh_masker *m, size_t rule)
{
    return rule < m->nrules ? m->rules[rule].name : NULL;
}

int lh_luhn_valid(const char *s, size_t n)
{
    unsigned sum = 0, ndigits = 0;
    for (size_t i = n; i-- > 0;) {
        if (s[i] < '0' || s[i] > '9')
            continue;
        unsigned d = (unsigned)(s[i] - '0');
        if (ndigits++ & 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return ndigits > 0 && sum % 10 == 0;
}

static int is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

static int is_email_local(unsigned char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static int is_email_domain(unsigned char c)
{
    return is_alnum(c) || c == '.' || c == '-';
}

/* Finds e-mail addresses: around every '@', the longest local part to the
 * left and a dotted domain whose last label has two or more letters. */
static int scan_emails(const char *s, size_t n, struct spans *out)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t pos = 0, floor = 0;   /* floor: spans must not overlap the previous one */
    while (pos < n) {
        const unsigned char *at = memchr(u + pos, '@', n - pos);
        if (!at)
            break;
        size_t a = (size_t)(at - u);
        pos = a + 1;
        size_t l = a;
        while (l > floor && is_email_local(u[l - 1]))
            l--;
        while (l < a && u[l] == '.')
            l++;
        if (l == a)
            continue;
        size_t r = a + 1;
        while (r < n && is_email_domain(u[r]))
            r++;
        while (r > a + 1 && (u[r - 1] == '.' || u[r - 1] == '-'))
            r--;
        /* The last label must be letters only, two or more. */
        size_t dot = r;
        while (dot > a + 1 && u[dot - 1] != '.')
            dot--;
        if (dot <= a + 2 || r - dot < 2)
            continue;
        int tld_ok = 1;
        for (size_t i = dot; i < r; i++)
            if (!((u[i] | 0x20) >= 'a' && (u[i] | 0x20) <= 'z'))
                tld_ok = 0;
        if (!tld_ok)
            continue;
        if (spans_add(out, l, r, RULE_EMAIL) < 0)
            return LH_ENOMEM;
        floor = r;
        pos = r;
    }
    return 0;
}

/* Finds card numbers: a run of digit groups separated by single spaces or
 * dashes, not touching other letters or digits. Within a run, the longest
 * sequence of whole groups with 13-19 digits that passes Luhn is masked,
 * trying each group as a start, so "order 12 4111 1111 1111 1111" masks
 * the card and keeps the 12. */
static int scan_cards(const char *s, size_t n, struct spans *out)
{
    const unsigned char *u = (const unsigned char *)s;
    enum { MAXG = 24 };
    size_t gs[MAXG], ge[MAXG];
    size_t i = 0;
    while (i < n) {
        if (!(u[i] >= '0' && u[i] <= '9') || (i > 0 && is_alnum(u[i - 1]))) {
            i++;
            continue;
        }
        /* Collect the groups of this run. */
        size_t ng = 0, p = i;
        int too_many = 0;
        for (;;) {
            size_t st = p;
            while (p < n && u[p] >= '0' && u[p] <= '9')
                p++;
            if (ng == MAXG) {
                too_many = 1;
                break;
            }
            gs[ng] = st;
            ge[ng] = p;
            ng++;
            if (p + 1 < n && (u[p] == ' ' || u[p] == '-') && u[p + 1] >= '0' && u[p + 1] <= '9')
                p++;
            else
                break;
        }
        size_t run_end = ge[ng - 1];
        if (too_many || (run_end < n && is_alnum(u[run_end]))) {
            /* Part of a longer token: skip the whole run. */
            while (p < n && (is_alnum(u[p]) || u[p] == ' ' || u[p] == '-'))
                if (!is_alnum(u[p++]))
                    break;
            i = p > i ? p : i + 1;
            continue;
        }
        size_t g = 0;
        while (g < ng) {
            int found = 0;
            for (size_t e = ng; e-- > g;) {
                size_t digits = 0;
                for (size_t k = g; k <= e; k++)
                    digits += ge[k] - gs[k];
                if (digits < 13 || digits > 19)
                    continue;
                /* Card brands start with 2-6 (Mastercard 2-series and 5,
                 * Amex/Diners/JCB 3, Visa 4, Discover/UnionPay/Maestro 6);
                 * epoch timestamps in s, ms, us or ns start with 1 and would
                 * otherwise pass Luhn one time in ten. */
                if (u[gs[g]] < '2' || u[gs[g]] > '6')
                    continue;
                if (!lh_luhn_valid(s + gs[g], ge[e] - gs[g]))
                    continue;
                if (spans_add(out, gs[g], ge[e], RULE_CARD) < 0)
                    return LH_ENOMEM;
                g = e + 1;
                found = 1;
                break;
            }
            if (!found)
                g++;
        }
        i = run_end;
    }
    return 0;
}

static int scan_pattern(const struct rule *r, size_t rule, const char *s, size_t n,
                        struct spans *out)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(r->re, NULL);
    if (!md)
        return LH_ENOMEM;
    int rc = 0;
    PCRE2_SIZE off = 0;
    while (off <= n) {
        int m = pcre2_match(r->re, (PCRE2_SPTR)s, n, off, 0, md, NULL);
        if (m < 0)
            break;   /* no match, or invalid UTF-8 in s: nothing more to mask */
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] > ov[0] && spans_add(out, ov[0], ov[1], rule) < 0) {
            rc = LH_ENOMEM;
            break;
        }
        off = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
    pcre2_match_data_free(md);
    return rc;
}

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->end != y->end)
        return x->end > y->end ? -1 : 1;
    return 0;
}

int lh_mask_apply(const struct lh_masker *m, const char *s, size_t n, struct lh_buf *out,
                  unsigned long *counts)
{
    struct spans sp = { 0 };
    int rc = 0;
    if (m->emails && memchr(s, '@', n))
        rc = scan_emails(s, n, &sp);
    if (rc == 0 && m->cards)
        rc = scan_cards(s, n, &sp);
    for (size_t i = 2; rc == 0 && i < m->nrules; i++)
        rc = scan_pattern(&m->rules[i], i, s, n, &sp);
    if (rc < 0 || sp.n == 0) {
        free(sp.v);
        return rc;
    }
    qsort(sp.v, sp.n, sizeof(*sp.v), span_cmp);
    lh_buf_reset(out);
    size_t pos = 0;
    int replaced = 0;
    for (size_t i = 0; i < sp.n && rc == 0; i++) {
        const struct span *x = &sp.v[i];
        if (x->start < pos)
            continue;   /* overlaps a span already replaced */
        const struct rule *r = &m->rules[x->rule];
        rc = lh_buf_append(out, s + pos, x->start - pos);
        if (rc == 0)
            rc = lh_buf_append(out, r->replacement, r->replacement_len);
        pos = x->end;
        replaced++;
        if (counts)
            counts[x->rule]++;
    }
    if (rc == 0)
        rc = lh_buf_append(out, s + pos, n - pos);
    free(sp.v);
    return rc < 0 ? rc : replaced;
}
