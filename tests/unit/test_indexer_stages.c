/* Unit tests for the indexer's stages: decode, enrich, mask, route, sample. */
#include "../lh_test.h"
#include "../../indexer/stages.h"

#include <unistd.h>

#include "lh/conf.h"

static const char *patterns_dir(void)
{
    static char dir[4096];
    snprintf(dir, sizeof(dir), "%s/../../config/patterns", lh_test_build_dir());
    if (access(dir, R_OK) != 0)
        snprintf(dir, sizeof(dir), "config/patterns");
    return dir;
}

/* Stage config from YAML, as the daemon reads it. */
struct scfg {
    struct lh_stages_config s;
};

static const struct lh_opt scfg_opts[] = {
    LH_STAGES_OPTS(struct scfg, s),
    { 0 }
};

static int load(struct scfg *c, const char *yaml, struct lh_err *err)
{
    memset(c, 0, sizeof(*c));
    int rc = lh_conf_load_string("test.yaml", yaml, strlen(yaml), scfg_opts, c, err);
    if (rc == 0) {
        free(c->s.parse.patterns_dir);
        c->s.parse.patterns_dir = strdup(patterns_dir());
    }
    return rc;
}

static const char *const sinks3[] = { "hot", "archive", "cold" };

struct fx {
    struct scfg c;
    struct lh_stages *s;
    struct lh_stage_worker *w;
    struct lh_arena a;
};

static int fx_open(struct fx *f, const char *yaml)
{
    memset(f, 0, sizeof(*f));
    struct lh_err err = { 0 };
    if (load(&f->c, yaml, &err) < 0) {
        fprintf(stderr, "    config: %s\n", err.msg);
        return -1;
    }
    if (lh_stages_create(&f->c.s, sinks3, 3, &f->s, &err) < 0) {
        fprintf(stderr, "    stages: %s\n", err.msg);
        lh_conf_free(scfg_opts, &f->c);
        return -1;
    }
    lh_conf_free(scfg_opts, &f->c);   /* the stages keep copies */
    return lh_stage_worker_create(f->s, &f->w);
}

static void fx_close(struct fx *f)
{
    lh_stage_worker_destroy(f->w);
    lh_stages_destroy(f->s);
    lh_arena_free(&f->a);
}

static struct lh_event ev_of(const char *raw, enum lh_level level, const char *service,
                             const char *tenant, const char *id)
{
    struct lh_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.raw = raw;
    ev.level = level;
    ev.service = service;
    ev.tenant = tenant;
    ev.id = id;
    ev.ts_ns = 1779523574000000000LL;
    ev.received_ns = ev.ts_ns + 2500000000LL;
    return ev;
}

TEST(stages_validate_names_levels_rates_and_sinks)
{
    struct scfg c;
    struct lh_err err = { 0 };
    static const struct { const char *yaml, *msg; } bad[] = {
        { "stages: [parse, frobnicate]", "unknown stage 'frobnicate'" },
        { "stages: [mask, mask]", "listed twice" },
        { "routes: [{sinks: [nowhere]}]", "no sink named 'nowhere'" },
        { "routes: [{sinks: [hot], min_level: LOUD}]", "unknown level 'LOUD'" },
        { "routes: [{sinks: [hot], levels: [INFO, whisper]}]", "unknown level 'whisper'" },
        { "sample: [{name: x, rate: 1.5}]", "not within 0..1" },
        { "sample: [{name: x, rate: 0.5, sinks: [nope]}]", "no sink named 'nope'" },
        { "enrich: {service_from: [k8s.node]}", "unknown source 'k8s.node'" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        REQUIRE_INT(load(&c, bad[i].yaml, &err), ==, 0);
        CHECK_INT(lh_stages_validate(&c.s, sinks3, 3, &err), ==, LH_EINVAL);
        CHECK_CONTAINS(err.msg, bad[i].msg);
        lh_conf_free(scfg_opts, &c);
    }
    REQUIRE_INT(load(&c, "routes: [{sinks: [hot, cold], min_level: warn, levels: [unknown]}]\n"
                         "sample: [{name: d, rate: 0, max_level: DEBUG}]\n", &err), ==, 0);
    CHECK_INT(lh_stages_validate(&c.s, sinks3, 3, &err), ==, 0);
    lh_conf_free(scfg_opts, &c);
}

TEST(stages_decode_takes_the_tenant_from_the_header_when_absent)
{
    struct fx f;
    REQUIRE(fx_open(&f, "{}") == 0);
    struct lh_bus_header h = { "tenant", "acme" };
    const char *js = "{\"id\":\"a-1\",\"raw\":\"hello\"}";
    struct lh_bus_msg m = { .value = js, .value_len = strlen(js), .headers = &h, .nheaders = 1 };
    struct lh_event ev;
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_stages_decode(f.w, &m, &ev, &f.a, &err), ==, 0);
    CHECK_STR(ev.tenant, "acme");
    const char *js2 = "{\"id\":\"a-2\",\"tenant\":\"own\",\"raw\":\"x\"}";
    m.value = js2;
    m.value_len = strlen(js2);
    REQUIRE_INT(lh_stages_decode(f.w, &m, &ev, &f.a, &err), ==, 0);
    CHECK_STR(ev.tenant, "own");
    m.nheaders = 0;
    m.value = js;
    m.value_len = strlen(js);
    REQUIRE_INT(lh_stages_decode(f.w, &m, &ev, &f.a, &err), ==, 0);
    CHECK_STR(ev.tenant, "default");
    m.value = "not json at all";
    m.value_len = strlen(m.value);
    CHECK_INT(lh_stages_decode(f.w, &m, &ev, &f.a, &err), ==, LH_EINVAL);
    CHECK(err.msg[0] != '\0');
    const struct lh_stage_counts *c = lh_stage_worker_counts(f.w);
    CHECK_INT(c->decoded, ==, 3);
    CHECK_INT(c->undecodable, ==, 1);
    fx_close(&f);
}

TEST(stages_enrich_tags_region_service_and_delay)
{
    struct fx f;
    REQUIRE(fx_open(&f, "enrich:\n"
                        "  tags: {region: eu-west-1, dc: dc1, env: prod}\n"
                        "  service_from: [k8s.container, metadata.app]\n"
                        "  ingest_delay: true\n") == 0);
    struct lh_kv meta[] = { { "env", "staging" }, { "app", "billing" } };
    struct lh_event ev = ev_of("x", LH_LEVEL_INFO, NULL, "t", "i-1");
    ev.meta = meta;
    ev.nmeta = 2;
    REQUIRE_INT(lh_stages_enrich(f.w, &ev, &f.a), ==, 0);
    CHECK_STR(ev.region, "eu-west-1");
    CHECK_STR(ev.service, "billing");                 /* k8s.container absent */
    CHECK_STR(lh_event_meta(&ev, "dc"), "dc1");
    CHECK_STR(lh_event_meta(&ev, "env"), "staging");  /* the event's own value wins */
    CHECK_STR(lh_event_meta(&ev, "ingest_delay_ms"), "2500");
    CHECK_INT(ev.nmeta, ==, 4);
    CHECK_STR(meta[0].value, "staging");              /* the input array is not changed */

    struct lh_event ev2 = ev_of("x", LH_LEVEL_INFO, NULL, "t", "i-2");
    ev2.region = "us-east-1";
    ev2.k8s_container = "api";
    REQUIRE_INT(lh_stages_enrich(f.w, &ev2, &f.a), ==, 0);
    CHECK_STR(ev2.region, "us-east-1");
    CHECK_STR(ev2.service, "api");
    CHECK_STR(lh_event_meta(&ev2, "env"), "prod");
    fx_close(&f);

    REQUIRE(fx_open(&f, "enrich: {tags: {region: r1, env: prod}, tags_override: true}") == 0);
    struct lh_event ev3 = ev_of("x", LH_LEVEL_INFO, "s", "t", "i-3");
    ev3.region = "r0";
    ev3.meta = meta;
    ev3.nmeta = 2;
    REQUIRE_INT(lh_stages_enrich(f.w, &ev3, &f.a), ==, 0);
    CHECK_STR(ev3.region, "r1");
    CHECK_STR(lh_event_meta(&ev3, "env"), "prod");
    CHECK_INT(ev3.nmeta, ==, 2);
    fx_close(&f);
}

TEST(stages_mask_message_raw_user_id_and_metadata)
{
    struct fx f;
    REQUIRE(fx_open(&f, "mask:\n  patterns:\n    - {name: token, regex: 'tok_[a-z0-9]+'}\n") == 0);
    struct lh_kv meta[] = { { "user", "alice@example.com" }, { "plain", "nothing here" },
                            { "t", "tok_abc123" } };
    struct lh_event ev = ev_of("paid with 4111 1111 1111 1111 by bob@example.org",
                               LH_LEVEL_INFO, "s", "t", "i-1");
    ev.message = "card 4111-1111-1111-1111";
    ev.user_id = "carol@example.net";
    ev.meta = meta;
    ev.nmeta = 3;
    REQUIRE_INT(lh_stages_mask(f.w, &ev, &f.a), ==, 0);
    CHECK_STR(ev.raw, "paid with [CARD] by [EMAIL]");
    CHECK_STR(ev.message, "card [CARD]");
    CHECK_STR(lh_event_meta(&ev, "user"), "[EMAIL]");
    CHECK_STR(lh_event_meta(&ev, "plain"), "nothing here");
    CHECK_STR(lh_event_meta(&ev, "t"), "[REDACTED]");
    CHECK_STR(meta[0].value, "alice@example.com");    /* input untouched */
    CHECK_STR(ev.user_id, "[EMAIL]");
    /* A number that fails the Luhn check stays. */
    struct lh_event ev2 = ev_of("order 4111 1111 1111 1112", LH_LEVEL_INFO, "s", "t", "i-2");
    ev2.message = ev2.raw;
    ev2.user_id = "usr_456";
    REQUIRE_INT(lh_stages_mask(f.w, &ev2, &f.a), ==, 0);
    CHECK_STR(ev2.raw, "order 4111 1111 1111 1112");
    CHECK_STR(ev2.user_id, "usr_456");
    CHECK(ev2.message == ev2.raw);
    const struct lh_stage_counts *c = lh_stage_worker_counts(f.w);
    CHECK_INT(c->masked_events, ==, 1);
    CHECK_INT(c->masked[0], ==, 3);   /* email: raw, user_id and metadata */
    CHECK_INT(c->masked[1], ==, 2);   /* card: raw and message */
    CHECK_INT(c->masked[2], ==, 1);   /* token */
    fx_close(&f);

    /* Off: nothing is masked. */
    REQUIRE(fx_open(&f, "mask: {emails: false, cards: false}") == 0);
    struct lh_event ev3 = ev_of("bob@example.org 4111 1111 1111 1111", LH_LEVEL_INFO, "s", "t",
                                "i-3");
    REQUIRE_INT(lh_stages_mask(f.w, &ev3, &f.a), ==, 0);
    CHECK_STR(ev3.raw, "bob@example.org 4111 1111 1111 1111");
    fx_close(&f);
}

TEST(stages_process_runs_the_stages_in_the_configured_order)
{
    /* parse then mask: message, raw and the user_id the grok pattern
     * found are masked one by one (4 e-mails). */
    struct fx f;
    const char *line = "2026-05-23 08:06:14 [pay] ERROR tr_1 bob@example.org - mail "
                       "bob@example.org failed";
    REQUIRE(fx_open(&f, "stages: [parse, mask]") == 0);
    struct lh_event ev = ev_of(line, LH_LEVEL_UNKNOWN, NULL, "t", "i-1");
    REQUIRE(lh_stages_process(f.w, &ev, &f.a) >= 0);
    CHECK_STR(ev.service, "pay");
    CHECK_INT(ev.level, ==, LH_LEVEL_ERROR);
    CHECK_STR(ev.message, "mail [EMAIL] failed");
    CHECK_STR(ev.user_id, "[EMAIL]");
    CHECK_STR(ev.raw, "2026-05-23 08:06:14 [pay] ERROR tr_1 [EMAIL] - mail [EMAIL] failed");
    const struct lh_stage_counts *c = lh_stage_worker_counts(f.w);
    CHECK_INT(c->kind[LH_PARSE_GROK], ==, 1);
    CHECK_INT(c->masked[0], ==, 4);
    fx_close(&f);

    /* mask then parse: the raw line is masked first (2 e-mails), the
     * fields parsed from it are masked already. */
    REQUIRE(fx_open(&f, "stages: [mask, parse]") == 0);
    struct lh_event ev2 = ev_of(line, LH_LEVEL_UNKNOWN, NULL, "t", "i-2");
    REQUIRE(lh_stages_process(f.w, &ev2, &f.a) >= 0);
    CHECK_STR(ev2.user_id, "[EMAIL]");
    CHECK_STR(ev2.message, "mail [EMAIL] failed");
    CHECK_INT(lh_stage_worker_counts(f.w)->masked[0], ==, 2);
    fx_close(&f);

    /* No parse stage: nothing is parsed. */
    REQUIRE(fx_open(&f, "stages: [enrich]") == 0);
    struct lh_event ev3 = ev_of(line, LH_LEVEL_UNKNOWN, NULL, "t", "i-3");
    REQUIRE(lh_stages_process(f.w, &ev3, &f.a) >= 0);
    CHECK(ev3.service == NULL);
    CHECK_INT(ev3.level, ==, LH_LEVEL_UNKNOWN);
    fx_close(&f);
}

TEST(stages_route_rules_union_final_and_conditions)
{
    struct fx f;
    REQUIRE(fx_open(&f, "routes:\n"
                        "  - {name: hot, min_level: WARN, levels: [UNKNOWN], sinks: [hot]}\n"
                        "  - {name: vip, tenants: [vip-*], sinks: [hot, cold], final: true}\n"
                        "  - {name: all, sinks: [archive]}\n"
                        "  - {name: pay, services: [payment-service], sinks: [cold]}\n") == 0);
    struct { enum lh_level l; const char *svc, *tenant; uint32_t want; } cases[] = {
        { LH_LEVEL_ERROR, "x", "t", 1 | 2 },
        { LH_LEVEL_WARN, "x", "t", 1 | 2 },
        { LH_LEVEL_INFO, "x", "t", 2 },
        { LH_LEVEL_UNKNOWN, "x", "t", 1 | 2 },
        { LH_LEVEL_DEBUG, "payment-service", "t", 2 | 4 },
        { LH_LEVEL_DEBUG, "payment-service-2", "t", 2 },
        { LH_LEVEL_INFO, "payment-service", "vip-acme", 1 | 4 },   /* final: no archive */
        { LH_LEVEL_INFO, NULL, "vip", 2 },                         /* "vip" lacks the '-' */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lh_event ev = ev_of("x", cases[i].l, cases[i].svc, cases[i].tenant, "id-1");
        uint32_t to = lh_stages_route(f.w, &ev);
        if (to != cases[i].want)
            lh_test_fail(__FILE__, __LINE__, "case %zu: routed to %u, want %u", i, to,
                         cases[i].want);
    }
    fx_close(&f);

    /* No routes: every sink. A rule set that matches nothing: none, counted. */
    REQUIRE(fx_open(&f, "{}") == 0);
    struct lh_event ev = ev_of("x", LH_LEVEL_INFO, "s", "t", "id");
    CHECK_INT(lh_stages_route(f.w, &ev), ==, 7);
    fx_close(&f);
    REQUIRE(fx_open(&f, "routes: [{min_level: ERROR, sinks: [hot]}]") == 0);
    CHECK_INT(lh_stages_route(f.w, &ev), ==, 0);
    CHECK_INT(lh_stage_worker_counts(f.w)->unrouted, ==, 1);
    fx_close(&f);
}

TEST(stages_sampling_is_deterministic_by_id_and_near_the_rate)
{
    struct fx f;
    REQUIRE(fx_open(&f, "sample:\n"
                        "  - {name: debug-thin, max_level: DEBUG, rate: 0.25, sinks: [hot]}\n"
                        "  - {name: chatty, services: [chatty], rate: 0.0}\n") == 0);
    size_t kept = 0, n = 4000;
    for (size_t i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof(id), "0123456789abcdef0123456789abcdef-%zu", i);
        struct lh_event ev = ev_of("x", LH_LEVEL_DEBUG, "s", "t", id);
        uint32_t to = lh_stages_route(f.w, &ev);
        double u = (double)(lh_stages_sample_hash(&ev) >> 11) / 9007199254740992.0;
        int keep = u < 0.25;
        /* The rule thins only "hot"; archive and cold always get it. */
        if (to != (keep ? 7u : 6u))
            lh_test_fail(__FILE__, __LINE__, "event %zu: routed to %u (u=%f)", i, to, u);
        kept += keep;
        /* The same id gives the same answer again. */
        CHECK_INT(lh_stages_route(f.w, &ev), ==, to);
    }
    CHECK(kept > n * 20 / 100 && kept < n * 30 / 100);
    const struct lh_stage_counts *c = lh_stage_worker_counts(f.w);
    CHECK_INT(c->sampled[0], ==, 2 * (n - kept));
    /* INFO is above max_level: never sampled; "chatty" at rate 0: dropped. */
    struct lh_event info = ev_of("x", LH_LEVEL_INFO, "s", "t", "id-x");
    CHECK_INT(lh_stages_route(f.w, &info), ==, 7);
    struct lh_event chatty = ev_of("x", LH_LEVEL_INFO, "chatty", "t", "id-y");
    CHECK_INT(lh_stages_route(f.w, &chatty), ==, 0);
    CHECK_INT(lh_stage_worker_counts(f.w)->sampled[1], ==, 1);
    CHECK_INT(lh_stage_worker_counts(f.w)->unrouted, ==, 0);
    fx_close(&f);
}
