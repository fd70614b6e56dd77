/* limits.c - the physical limits of this machine that loghaul's stages are
 * bound by, measured on one core: memcpy bandwidth, zstd level 1 and 3 and
 * gzip (lh_codec level 1 = ISA-L, the agent's default) compression of real
 * log text in 1 MiB blocks, sequential write + fdatasync bandwidth, and the
 * rate of small appends each followed by fdatasync (what a durable queue pays
 * per group commit).
 *
 * usage: limits --data FILE --dir DIR [--mb 256] [--seconds 1]
 *   FILE: log text to compress (its first 64 MiB are used, repeated if short)
 *   DIR:  a directory on the disk under test (a scratch file is written there)
 * Prints one JSON object per line: {"name":..., "value":..., "unit":...}. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lh/buf.h"
#include "lh/codec.h"
#include "lh/err.h"

#define BLOCK (1 << 20)

static double now_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void emit(const char *name, double value, const char *unit)
{
    printf("{\"name\":\"%s\",\"value\":%.6g,\"unit\":\"%s\"}\n", name, value, unit);
    fflush(stdout);
}

static void die(const char *what)
{
    fprintf(stderr, "limits: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Copies between two 64 MiB buffers for about `secs` of CPU time. */
static void bench_memcpy(double secs)
{
    size_t n = 64u << 20;
    char *a = malloc(n), *b = malloc(n);
    if (!a || !b)
        die("malloc");
    memset(a, 'x', n);
    memset(b, 'y', n);
    double t0 = now_s(CLOCK_THREAD_CPUTIME_ID), t;
    uint64_t bytes = 0;
    do {
        memcpy(b, a, n);
        bytes += n;
        a[bytes % n] ^= 1;   /* keep the copies from being elided */
        char *s = a;
        a = b;
        b = s;
    } while ((t = now_s(CLOCK_THREAD_CPUTIME_ID) - t0) < secs);
    emit("limits.memcpy_mb_s", (double)bytes / t / 1e6, "MB/s");
    free(a);
    free(b);
}

/* Compresses the text in 1 MiB blocks for about `secs` of CPU time; MB/s of
 * input per CPU-second, and the compressed/raw size. */
static void bench_codec(const char *data, size_t len, int zstd_level, double secs)
{
    struct lh_codec_ctx *ctx;
    struct lh_err err = {0};
    struct lh_buf out = LH_BUF_INIT;
    if (lh_codec_ctx_create(&ctx, &err) < 0) {
        fprintf(stderr, "limits: %s\n", err.msg);
        exit(1);
    }
    double t0 = now_s(CLOCK_THREAD_CPUTIME_ID), t;
    uint64_t in = 0, outb = 0;
    size_t off = 0;
    do {
        size_t n = len - off < BLOCK ? len - off : BLOCK;
        lh_buf_reset(&out);
        int rc = zstd_level ? lh_codec_ctx_zstd(ctx, zstd_level, data + off, n, &out, &err)
                            : lh_codec_ctx_gzip(ctx, 1, data + off, n, &out, &err);
        if (rc < 0) {
            fprintf(stderr, "limits: compress: %s\n", err.msg);
            exit(1);
        }
        in += n;
        outb += out.len;
        off = off + n >= len ? 0 : off + n;
    } while ((t = now_s(CLOCK_THREAD_CPUTIME_ID) - t0) < secs);
    char name[64];
    if (zstd_level)
        snprintf(name, sizeof(name), "limits.zstd%d", zstd_level);
    else
        snprintf(name, sizeof(name), "limits.gzip");
    char full[96];
    snprintf(full, sizeof(full), "%s_mb_s", name);
    emit(full, (double)in / t / 1e6, "MB/s");
    snprintf(full, sizeof(full), "%s_size_ratio", name);
    emit(full, (double)outb / (double)in, "x raw");
    lh_buf_free(&out);
    lh_codec_ctx_destroy(ctx);
}

/* Writes mb MiB in 1 MiB writes, then fdatasync; MB/s over the whole. */
static void bench_disk_write(const char *dir, int mb)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/limits-write.tmp", dir);
    char *buf = malloc(BLOCK);
    if (!buf)
        die("malloc");
    for (size_t i = 0; i < BLOCK; i++)
        buf[i] = (char)(i * 2654435761u >> 13);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die(path);
    double t0 = now_s(CLOCK_MONOTONIC);
    for (int i = 0; i < mb; i++) {
        buf[0] = (char)i;
        if (write(fd, buf, BLOCK) != BLOCK)
            die("write");
    }
    if (fdatasync(fd) < 0)
        die("fdatasync");
    double t = now_s(CLOCK_MONOTONIC) - t0;
    close(fd);
    unlink(path);
    free(buf);
    emit("limits.disk_write_mb_s", (double)mb * BLOCK / t / 1e6, "MB/s");
}

/* 4 KiB appends, each followed by fdatasync, for `secs`. */
static void bench_fsync(const char *dir, double secs)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/limits-fsync.tmp", dir);
    char buf[4096];
    memset(buf, 'f', sizeof(buf));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (fd < 0)
        die(path);
    double t0 = now_s(CLOCK_MONOTONIC), t;
    long n = 0;
    do {
        if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
            die("write");
        if (fdatasync(fd) < 0)
            die("fdatasync");
        n++;
    } while ((t = now_s(CLOCK_MONOTONIC) - t0) < secs);
    close(fd);
    unlink(path);
    emit("limits.fsync_per_s", (double)n / t, "fsync/s");
}

int main(int argc, char **argv)
{
    const char *data_path = NULL, *dir = NULL;
    int mb = 256;
    double secs = 1.0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--data")) data_path = argv[i + 1];
        else if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--mb")) mb = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) secs = atof(argv[i + 1]);
        else break;
    }
    if (!data_path || !dir || mb < 1 || secs <= 0) {
        fprintf(stderr, "usage: limits --data FILE --dir DIR [--mb 256] [--seconds 1]\n");
        return 2;
    }
    FILE *f = fopen(data_path, "r");
    if (!f)
        die(data_path);
    size_t cap = 64u << 20;
    char *data = malloc(cap);
    if (!data)
        die("malloc");
    size_t len = fread(data, 1, cap, f);
    fclose(f);
    if (len < BLOCK) {
        fprintf(stderr, "limits: %s holds less than 1 MiB\n", data_path);
        return 1;
    }
    bench_memcpy(secs / 2);
    bench_codec(data, len, 1, secs);
    bench_codec(data, len, 3, secs);
    bench_codec(data, len, 0, secs);
    bench_disk_write(dir, mb);
    bench_fsync(dir, secs);
    free(data);
    return 0;
}
