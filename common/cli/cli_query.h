/* cli_query.h - what `loghaul search`, `tail` and `aggregate` share: the
 * queryd server and token, the query given on the command line (words,
 * -f filter expressions, a time range), requests to queryd, and hits
 * printed as readable lines (coloured by level on a terminal) or JSON.
 *
 * Filter expressions (-f, repeatable), FIELD as in the search API
 * (service, level, host, trace_id, metadata.<key>, ...):
 *   FIELD=VALUE   EQUALS        FIELD!=VALUE  NOT_EQUALS
 *   FIELD=[A,B]   IN            FIELD^=VALUE  PREFIX
 *   FIELD~=VALUE  CONTAINS      FIELD?        EXISTS      !FIELD?  not EXISTS
 *   FIELD>VALUE  FIELD>=VALUE  FIELD<VALUE  FIELD<=VALUE   GT GTE LT LTE
 * Single-threaded, like the tool. */
#ifndef LH_CLI_QUERY_H
#define LH_CLI_QUERY_H

#include <getopt.h>
#include <stdio.h>

#include <jansson.h>

#include "lh/buf.h"
#include "lh/err.h"

struct lh_cliq {
    const char *cmd;            /* "search": for messages */
    const char *server;         /* base URL of queryd */
    const char *token;
    const char *ca_file;
    const char *since, *from, *to;
    const char *query_json;     /* -q: a whole query object instead */
    int json;                   /* -o json */
    int color;                  /* 1: ANSI colours */
    const char *color_opt;      /* auto|always|never */
    struct lh_buf text;         /* words, space separated */
    struct lh_buf filters;      /* filter objects, comma separated */
};

/* Short and long options every query command takes; their values start at
 * LH_CLIQ_OPT (commands number their own below it). */
#define LH_CLIQ_SHORT "s:t:f:o:q:"
enum { LH_CLIQ_OPT = 1000, LH_CLIQ_SINCE, LH_CLIQ_FROM, LH_CLIQ_TO, LH_CLIQ_COLOR,
       LH_CLIQ_CACERT };
#define LH_CLIQ_LONG                                                                  \
    { "server", required_argument, NULL, 's' }, { "token", required_argument, NULL, 't' }, \
    { "filter", required_argument, NULL, 'f' }, { "output", required_argument, NULL, 'o' }, \
    { "query", required_argument, NULL, 'q' },                                          \
    { "since", required_argument, NULL, LH_CLIQ_SINCE },                                \
    { "from", required_argument, NULL, LH_CLIQ_FROM },                                  \
    { "to", required_argument, NULL, LH_CLIQ_TO },                                      \
    { "color", required_argument, NULL, LH_CLIQ_COLOR },                                \
    { "cacert", required_argument, NULL, LH_CLIQ_CACERT }

/* The options' help text, for usage(). */
extern const char lh_cliq_help[];

void lh_cliq_init(struct lh_cliq *c, const char *cmd);
void lh_cliq_free(struct lh_cliq *c);
/* Handles one of the shared options: 1 taken, 0 not one of them, -1 bad
 * value (message printed). */
int lh_cliq_option(struct lh_cliq *c, int opt, const char *arg);
/* After the options: the remaining arguments are words of the full text;
 * decides colours. 0 or -1 (message printed). */
int lh_cliq_finish(struct lh_cliq *c, int argc, char **argv);

/* Appends the filter object for one expression; LH_EINVAL when it is not
 * one (err says why). */
int lh_cliq_filter_expr(const char *expr, struct lh_buf *out, struct lh_err *err);

/* Appends the query object: {"full_text":...,"filters":[...],"time_range":{...}}. */
int lh_cliq_query_object(const struct lh_cliq *c, struct lh_buf *out, struct lh_err *err);

/* POSTs body to path; on 200 returns the parsed answer, else prints the
 * server's error (or the transport's) and returns NULL with *exit_code. */
json_t *lh_cliq_post(struct lh_cliq *c, const char *path, const char *body, int *exit_code);

/* The same for any method (body may be NULL); 200 and 202 are success. */
json_t *lh_cliq_call(struct lh_cliq *c, const char *method, const char *path, const char *body,
                     int *exit_code);

/* Prints one hit: a line of text, or its JSON on one line. */
void lh_cliq_print_hit(const struct lh_cliq *c, json_t *hit, FILE *out);

/* The Authorization header value ("Bearer <token>"). */
const char *lh_cliq_auth(const struct lh_cliq *c, char *buf, size_t size);

#endif
