/* cmd_dlq.c - `loghaul dlq list|show|replay`: the indexer's dead letters. */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../indexer/dlq.h"
#include "../../indexer/indexer.h"
#include "cli.h"
#include "lh/log.h"

static void dlq_usage(FILE *f)
{
    fputs("usage: loghaul dlq list   [options]\n"
          "       loghaul dlq show   [options] [PARTITION:]OFFSET\n"
          "       loghaul dlq replay [options]\n"
          "\n"
          "Reads the indexer's dead-letter topic (bus.dlq_topic of the indexer config) with a\n"
          "consumer group of its own. list and show never move that group; replay produces the\n"
          "selected events again (to pipeline.replay_topic, or bus.topic when there is none) and\n"
          "then commits the group, so a second replay does not repeat the first. Replayed events\n"
          "keep their ids: the sinks drop what they already hold.\n"
          "\n"
          "options:\n"
          "  -c, --config FILE       indexer config (default: $LOGHAUL_INDEXER_CONFIG, else\n"
          "                          config/local/indexer.yaml when present, else defaults)\n"
          "  -g, --group NAME        consumer group (default " LH_DLQ_GROUP ")\n"
          "      --tenant T          only entries of this tenant\n"
          "      --sink S            only entries rejected by this sink ('-': undecodable)\n"
          "      --reason TEXT       only entries whose reason contains TEXT\n"
          "  -n, --max N             stop after N entries\n"
          "      --wait DURATION     how long to wait for the first entry (spool 500ms,\n"
          "                          kafka 10s)\n"
          "      --json              list: one JSON object per entry\n"
          "      --width N           list: characters of the event shown (default 160)\n"
          "      --to TOPIC          replay: produce here instead (\"{tenant}\" expands)\n"
          "      --include-undecodable  replay: also messages that never decoded\n"
          "      --dry-run           replay: count what would be replayed, change nothing\n", f);
}

struct opts {
    const char *config, *group, *to;
    struct lh_dlq_filter filter;
    size_t max, width;
    int64_t wait_ms;
    int json, include_undecodable, dry_run;
    int have_pos;
    int32_t partition;
    int64_t offset;
};

static const char *default_config(void)
{
    const char *env = getenv("LOGHAUL_INDEXER_CONFIG");
    if (env && *env)
        return env;
    return access("config/local/indexer.yaml", R_OK) == 0 ? "config/local/indexer.yaml" : NULL;
}

static int parse_pos(const char *s, struct opts *o)
{
    char *end;
    const char *colon = strchr(s, ':');
    long long a = strtoll(s, &end, 10);
    if (colon) {
        if (end != colon)
            return -1;
        o->partition = (int32_t)a;
        o->offset = strtoll(colon + 1, &end, 10);
    } else {
        o->partition = -1;
        o->offset = a;
    }
    if (*end || o->offset < 0)
        return -1;
    o->have_pos = 1;
    return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    enum { O_TENANT = 256, O_SINK, O_REASON, O_WAIT, O_JSON, O_WIDTH, O_TO, O_UNDEC, O_DRY };
    static const struct option lo[] = {
        { "config", required_argument, NULL, 'c' }, { "group", required_argument, NULL, 'g' },
        { "tenant", required_argument, NULL, O_TENANT },
        { "sink", required_argument, NULL, O_SINK },
        { "reason", required_argument, NULL, O_REASON },
        { "max", required_argument, NULL, 'n' }, { "wait", required_argument, NULL, O_WAIT },
        { "json", no_argument, NULL, O_JSON }, { "width", required_argument, NULL, O_WIDTH },
        { "to", required_argument, NULL, O_TO },
        { "include-undecodable", no_argument, NULL, O_UNDEC },
        { "dry-run", no_argument, NULL, O_DRY }, { "help", no_argument, NULL, 'h' },
        { 0, 0, 0, 0 },
    };
    o->wait_ms = -1;
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:g:n:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'c': o->config = optarg; break;
        case 'g': o->group = optarg; break;
        case 'n': o->max = (size_t)strtoull(optarg, NULL, 10); break;
        case O_TENANT: o->filter.tenant = optarg; break;
        case O_SINK: o->filter.sink = optarg; break;
        case O_REASON: o->filter.reason = optarg; break;
        case O_WAIT:
            if (lh_conf_parse_duration_ms(optarg, &o->wait_ms) < 0) {
                fprintf(stderr, "loghaul dlq: --wait: not a duration: %s\n", optarg);
                return -1;
            }
            break;
        case O_JSON: o->json = 1; break;
        case O_WIDTH: o->width = (size_t)strtoull(optarg, NULL, 10); break;
        case O_TO: o->to = optarg; break;
        case O_UNDEC: o->include_undecodable = 1; break;
        case O_DRY: o->dry_run = 1; break;
        case 'h': dlq_usage(stdout); exit(0);
        default: return -1;
        }
    }
    return 0;
}

struct list_ctx {
    const struct opts *o;
    size_t shown;
    int found;
};

static int list_visit(void *arg, const struct lh_dlq_entry *e)
{
    struct list_ctx *x = arg;
    if (!lh_dlq_match(&x->o->filter, e))
        return 0;
    if (x->o->json)
        lh_dlq_print_json(stdout, e);
    else
        lh_dlq_print_line(stdout, e, x->o->width);
    x->shown++;
    return x->o->max && x->shown >= x->o->max ? 1 : 0;
}

static int show_visit(void *arg, const struct lh_dlq_entry *e)
{
    struct list_ctx *x = arg;
    const struct opts *o = x->o;
    if (e->msg->offset != o->offset || (o->partition >= 0 && e->msg->partition != o->partition))
        return 0;
    lh_dlq_print_full(stdout, e);
    x->found = 1;
    return 1;
}

static int run(int argc, char **argv)
{
    if (argc < 2) {
        dlq_usage(stderr);
        return 2;
    }
    const char *verb = argv[1];
    struct opts o = { 0 };
    if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0) {
        dlq_usage(stdout);
        return 0;
    }
    if (strcmp(verb, "list") != 0 && strcmp(verb, "show") != 0 && strcmp(verb, "replay") != 0) {
        fprintf(stderr, "loghaul dlq: unknown action '%s'\n\n", verb);
        dlq_usage(stderr);
        return 2;
    }
    if (parse_opts(argc - 1, argv + 1, &o) < 0) {
        dlq_usage(stderr);
        return 2;
    }
    int show = strcmp(verb, "show") == 0;
    if (show && (optind + 1 >= argc || parse_pos(argv[optind + 1], &o) < 0)) {
        fprintf(stderr, "loghaul dlq show: give the entry as [PARTITION:]OFFSET (from list)\n");
        return 2;
    }
    lh_log_set_level(LH_LOG_WARN);
    if (!o.config)
        o.config = default_config();
    struct lh_indexer_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    struct lh_err err = { 0 };
    if (lh_daemon_load_config(&lh_indexer_ops, o.config, &cfg, &err) < 0) {
        fprintf(stderr, "loghaul dlq: %s\n", err.msg);
        return 1;
    }
    struct lh_bus *bus = NULL;
    int status = 1, rc;
    if ((rc = lh_bus_open(&cfg.bus, NULL, &bus, &err)) < 0) {
        fprintf(stderr, "loghaul dlq: bus: %s\n", err.msg);
        goto out;
    }
    int kafka = cfg.bus.type == LH_BUS_KAFKA;
    struct lh_dlq_scan scan = {
        .group = o.group, .topic = cfg.bus.dlq_topic,
        .first_wait_ms = o.wait_ms >= 0 ? (int)o.wait_ms : kafka ? 10000 : 500,
        .idle_wait_ms = kafka ? 2000 : 200,
        .max = strcmp(verb, "replay") == 0 ? o.max : 0,
    };
    if (strcmp(verb, "replay") == 0) {
        char target[256];
        if (o.to)
            snprintf(target, sizeof(target), "%s", o.to);
        else if (!lh_pipeline_replay_topic(&cfg.pipeline, &cfg.bus, target, sizeof(target)))
            snprintf(target, sizeof(target), "%s", cfg.bus.topic);
        struct lh_dlq_replay_stats st;
        rc = lh_dlq_replay(bus, &scan, target, &o.filter, o.include_undecodable, o.dry_run,
                           &st, &err);
        if (rc < 0) {
            fprintf(stderr, "loghaul dlq replay: %s\n", err.msg);
            fprintf(stderr, "(before the error: %" PRIu64 " read, %" PRIu64 " replayed)\n",
                    st.seen, st.replayed);
            goto out;
        }
        printf("%s%" PRIu64 " dead letter(s) read, %" PRIu64 " replayed to %s, %" PRIu64
               " skipped\n", o.dry_run ? "dry run: " : "", st.seen, st.replayed, target,
               st.skipped);
        status = 0;
        goto out;
    }
    struct list_ctx x = { .o = &o };
    rc = lh_dlq_each(bus, &scan, show ? show_visit : list_visit, &x, &err);
    if (rc < 0) {
        fprintf(stderr, "loghaul dlq %s: %s\n", verb, err.msg);
        goto out;
    }
    if (show && !x.found) {
        fprintf(stderr, "loghaul dlq show: no entry at %s among the %d pending in group %s\n",
                argv[optind + 1], rc, o.group ? o.group : LH_DLQ_GROUP);
        goto out;
    }
    if (!show && !o.json)
        fprintf(stderr, "%zu of %d dead letter(s) shown (%s, group %s)\n", x.shown, rc,
                cfg.bus.dlq_topic, o.group ? o.group : LH_DLQ_GROUP);
    status = 0;
out:
    lh_bus_close(bus);
    lh_conf_free(lh_indexer_ops.opts, &cfg);
    return status;
}

const struct lh_cli_command lh_cli_dlq = {
    .name = "dlq",
    .summary = "list, show and replay the indexer's dead letters",
    .run = run,
    .usage = dlq_usage,
};
