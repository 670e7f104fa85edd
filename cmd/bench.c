/*
 * bench.c - walctl bench: the real ingest path, measured.
 *
 * For each sync mode, a child 'walctl serve --ack' is fed the points (TSBS
 * cpu-only shaped, generated, or --input FILE) as fast as it reads them;
 * the run is timed from the child's start to its exit (startup, storage
 * flushes and the final checkpoint included), and each ack's latency is
 * the time from the write of the last point it covers to its arrival.
 * --latency feeds points one at a time, each waiting for its ack, and
 * compares the median with a raw 4 KiB append + fdatasync measured in the
 * same run on the same file system.  Beside each child, the same points go
 * through the engine in this process (lib/engine.c: parse, encode, append,
 * group commit, flush, checkpoint), without a pipe or a process start.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"

static const char options[] =
    "  --sync all|fsync|fdatasync|async\n"
    "                             sync modes to measure (default all)\n"
    "  --points N                 generated points (default 1000000)\n"
    "  --input FILE               line protocol to use instead of generated points\n"
    "  --latency N                points sent one at a time, each waiting for its ack (default 1000; 0: skip)\n"
    "  --format text|json         report format (default text)\n"
    "  --emit N                   print N generated points as line protocol and exit\n";

enum { OPT_SYNC = 256, OPT_POINTS, OPT_INPUT, OPT_LATENCY, OPT_FORMAT, OPT_EMIT };

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct child {
	pid_t pid;
	int in, out; /* its stdin (we write), its stdout (we read) */
};

static int spawn_serve(struct child *c, const char *dir, const char *sync, const char *metrics)
{
	int a[2], b[2];

	if (pipe(a) || pipe(b))
		return -1;
	c->pid = fork();
	if (c->pid < 0)
		return -1;
	if (c->pid == 0) {
		dup2(a[0], 0);
		dup2(b[1], 1);
		close(a[0]), close(a[1]), close(b[0]), close(b[1]);
		execl("/proc/self/exe", "walctl", "-q", "serve", "-d", dir, "--ack", "--sync", sync, "--metrics-file",
		      metrics, (char *)NULL);
		_exit(127);
	}
	close(a[0]);
	close(b[1]);
	c->in = a[1];
	c->out = b[0];
	return 0;
}

struct mark {
	double t;
	uint64_t points;
};

struct feed {
	int fd;
	const char *data;
	size_t len;
	struct mark *marks;
	size_t nmarks;
};

static void *feeder(void *arg)
{
	struct feed *f = arg;
	size_t off = 0;
	uint64_t points = 0;

	while (off < f->len) {
		size_t n = f->len - off < (256u << 10) ? f->len - off : (256u << 10);
		/* end the chunk at a line end, so points are whole */
		const char *nl = memrchr(f->data + off, '\n', n);
		if (nl && off + n < f->len)
			n = (size_t)(nl - (f->data + off)) + 1;
		for (size_t i = 0; i < n; i++)
			points += f->data[off + i] == '\n';
		size_t done = 0;
		while (done < n) {
			ssize_t w = write(f->fd, f->data + off + done, n - done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				goto out;
			done += (size_t)w;
		}
		off += n;
		f->marks[f->nmarks] = (struct mark){ now_s(), points };
		__atomic_store_n(&f->nmarks, f->nmarks + 1, __ATOMIC_RELEASE);
	}
out:
	close(f->fd);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static uint64_t metric(const char *path, const char *name)
{
	FILE *f = fopen(path, "r");
	char line[512];
	uint64_t v = 0;
	size_t n = strlen(name);

	/* "NAME VALUE", or "NAME{LABELS} VALUE" */
	while (f && fgets(line, sizeof line, f)) {
		const char *p = line + n;
		if (strncmp(line, name, n) || (*p != ' ' && *p != '{'))
			continue;
		if (*p == '{' && !(p = strchr(p, '}')))
			continue;
		v = strtoull(p + 1, NULL, 10);
	}
	if (f)
		fclose(f);
	return v;
}

struct result {
	const char *mode;
	double secs, p50, p99, p999;
	uint64_t points, syncs;
	int status;
};

static int run_mode(const char *base, const char *mode, const char *data, size_t len, uint64_t npoints,
                    struct result *r)
{
	char dir[PATH_MAX + 40], metrics[PATH_MAX + 60], cmd[PATH_MAX + 80];
	struct child c;
	struct feed f = { 0 };
	pthread_t th;

	snprintf(dir, sizeof dir, "%s/%s", base, mode);
	snprintf(metrics, sizeof metrics, "%s/%s.prom", base, mode);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return -1;
	f.marks = malloc((len / (64u << 10) + 16) * sizeof *f.marks);
	double *lat = malloc((npoints + 16) * sizeof *lat);
	size_t nlat = 0;
	double t0 = now_s();
	if (!f.marks || !lat || spawn_serve(&c, dir, mode, metrics) != 0) {
		free(f.marks);
		free(lat);
		return -1;
	}
	f.fd = c.in;
	f.data = data;
	f.len = len;
	pthread_create(&th, NULL, feeder, &f);
	FILE *acks = fdopen(c.out, "r");
	char line[128];
	size_t m = 0;
	uint64_t acked = 0;
	while (acks && fgets(line, sizeof line, acks)) {
		double t = now_s();
		unsigned long long lsn, points;
		if (sscanf(line, "ack %llu %llu", &lsn, &points) != 2)
			continue;
		if (points == acked)
			continue;
		acked = points;
		/* the write that carried the last of these points */
		size_t nm = __atomic_load_n(&f.nmarks, __ATOMIC_ACQUIRE);
		while (m < nm && f.marks[m].points < points)
			m++;
		double tw = m < nm ? f.marks[m].t : t;
		lat[nlat++] = t > tw ? t - tw : 0;
	}
	int st;
	waitpid(c.pid, &st, 0);
	r->secs = now_s() - t0;
	pthread_join(th, NULL);
	if (acks)
		fclose(acks);
	qsort(lat, nlat, sizeof *lat, cmp_double);
	r->mode = mode;
	r->points = acked;
	r->p50 = pct(lat, nlat, 0.5);
	r->p99 = pct(lat, nlat, 0.99);
	r->p999 = pct(lat, nlat, 0.999);
	r->syncs = metric(metrics, "walctl_syncs_total");
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	free(lat);
	free(f.marks);
	return 0;
}

/* The engine in this process: what serve does minus the pipe. */
struct inproc {
	pthread_mutex_t mu;
	struct mark *marks; /* points through each append, and its time */
	size_t nmarks, capmarks, m;
	double *lat;
	size_t nlat;
	uint64_t acked;
};

static void inproc_ack(void *ctx, uint64_t lsn, uint64_t points)
{
	struct inproc *ip = ctx;
	double t = now_s();

	(void)lsn;
	pthread_mutex_lock(&ip->mu);
	while (ip->m < ip->nmarks && ip->marks[ip->m].points <= points) {
		ip->lat[ip->nlat++] = t - ip->marks[ip->m].t;
		ip->m++;
	}
	ip->acked = points;
	pthread_mutex_unlock(&ip->mu);
}

/* Append the batch in enc (batch points) to the engine, marking when. */
static int inproc_append(struct inproc *ip, wal_engine_t *e, wal_enc_t *enc, uint64_t batch, uint64_t *points)
{
	const unsigned char *p;
	size_t n;

	*points += batch;
	pthread_mutex_lock(&ip->mu);
	if (ip->nmarks == ip->capmarks) {
		size_t c = ip->capmarks ? ip->capmarks * 2 : 1024;
		struct mark *m = realloc(ip->marks, c * sizeof *m);
		double *l = m ? realloc(ip->lat, c * sizeof *l) : NULL;
		if (m)
			ip->marks = m;
		if (!m || !l) {
			pthread_mutex_unlock(&ip->mu);
			return -1;
		}
		ip->lat = l;
		ip->capmarks = c;
	}
	ip->marks[ip->nmarks++] = (struct mark){ .t = now_s(), .points = *points };
	pthread_mutex_unlock(&ip->mu);
	wal_enc_finish(enc, &p, &n);
	if (wal_engine_append(e, WAL_T_POINTS, p, n, batch, NULL) != 0)
		return -1;
	wal_enc_begin(enc, "default", 7);
	return 0;
}

static int run_engine(const char *base, const char *mode, const char *data, size_t len, struct result *r)
{
	char dir[PATH_MAX + 40], cmd[PATH_MAX + 80];
	struct inproc ip = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct wal_engine_opts eo = { .ctx = &ip, .ack = inproc_ack };
	struct wal_engine_stats st;
	wal_engine_t *e = NULL;
	wal_lp_t *lp = NULL;
	wal_enc_t *enc = NULL;
	struct wal_point pt;
	uint64_t batch = 0, points = 0;
	int rc = -1, k;

	snprintf(dir, sizeof dir, "%s/%s-engine", base, mode);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0 || parse_sync("--sync", mode, &eo.wal.sync) != 0)
		return -1;
	double t0 = now_s();
	if (wal_lp_new(&lp, WAL_PREC_NS, wal_now_ns()) != 0 || wal_enc_new(&enc) != 0 ||
	    wal_engine_open(&e, dir, &eo) != 0)
		goto out;
	wal_enc_begin(enc, "default", 7);
	wal_lp_input(lp, data, len, 1, 1);
	while ((k = wal_lp_next(lp, &pt)) == 1) {
		if (wal_enc_add(enc, &pt) != 0)
			goto out;
		if (++batch == 5000 || wal_enc_size(enc) >= (8u << 20)) {
			if (inproc_append(&ip, e, enc, batch, &points) != 0)
				goto out;
			batch = 0;
		}
	}
	if (k < 0 || (batch && inproc_append(&ip, e, enc, batch, &points) != 0))
		goto out;
	wal_engine_stop(e);
	wal_engine_stats(e, &st);
	rc = wal_engine_failure(e) ? -1 : 0;
	if (wal_engine_close(e) != 0)
		rc = -1;
	e = NULL;
	r->secs = now_s() - t0;
	r->mode = mode;
	r->points = ip.acked;
	r->syncs = st.syncs;
	r->status = rc ? EXIT_OPER : 0;
	qsort(ip.lat, ip.nlat, sizeof *ip.lat, cmp_double);
	r->p50 = pct(ip.lat, ip.nlat, 0.5);
	r->p99 = pct(ip.lat, ip.nlat, 0.99);
	r->p999 = pct(ip.lat, ip.nlat, 0.999);
out:
	if (e)
		wal_engine_close(e);
	wal_lp_free(lp);
	wal_enc_free(enc);
	free(ip.marks);
	free(ip.lat);
	return rc;
}

/* One point at a time, each waiting for its ack; and raw 4 KiB appends
 * with fdatasync on the same file system, interleaved with them so that
 * both see the same machine. */
static int run_latency(const char *base, const char *data, size_t len, unsigned n, double *serve_p50, double *raw_p50)
{
	char dir[PATH_MAX + 40], metrics[PATH_MAX + 60], raw[PATH_MAX + 20], line[128], block[4096];
	struct child c;
	double *v = malloc((n + 1) * sizeof *v), *r = malloc((n + 1) * sizeof *r);
	const char *p = data, *end = data + len;

	snprintf(dir, sizeof dir, "%s/latency", base);
	snprintf(metrics, sizeof metrics, "%s/latency.prom", base);
	snprintf(raw, sizeof raw, "%s/raw", base);
	int fd = open(raw, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (!v || !r || fd < 0 || spawn_serve(&c, dir, "fdatasync", metrics) != 0) {
		if (fd >= 0)
			close(fd);
		free(v);
		free(r);
		return -1;
	}
	memset(block, 'x', sizeof block);
	FILE *acks = fdopen(c.out, "r");
	unsigned k = 0;
	for (; k < n && p < end; k++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		double t = now_s();
		if (write(c.in, p, l) != (ssize_t)l || !fgets(line, sizeof line, acks))
			break;
		v[k] = now_s() - t;
		p += l;
		t = now_s();
		if (write(fd, block, sizeof block) != (ssize_t)sizeof block || fdatasync(fd) != 0)
			break;
		r[k] = now_s() - t;
	}
	close(fd);
	close(c.in);
	while (fgets(line, sizeof line, acks))
		;
	fclose(acks);
	waitpid(c.pid, NULL, 0);
	qsort(v, k, sizeof *v, cmp_double);
	qsort(r, k, sizeof *r, cmp_double);
	*serve_p50 = pct(v, k, 0.5);
	*raw_p50 = pct(r, k, 0.5);
	free(v);
	free(r);
	return k == n ? 0 : -1;
}

static char *generate(uint64_t n, size_t *len)
{
	wal_gen_t *g;
	size_t cap = (size_t)n * 360 + 1024, l = 0;
	char *buf = malloc(cap);

	if (!buf || wal_gen_new(&g, 1, 100) != 0) {
		free(buf);
		return NULL;
	}
	for (uint64_t i = 0; i < n; i++) {
		if (cap - l < 1024) {
			char *q = realloc(buf, cap * 2);
			if (!q) {
				free(buf);
				wal_gen_free(g);
				return NULL;
			}
			buf = q;
			cap *= 2;
		}
		l += wal_gen_line(g, buf + l, cap - l);
	}
	wal_gen_free(g);
	*len = l;
	return buf;
}

int cmd_bench(int argc, char **argv)
{
	static const struct option longopts[] = {
		COMMON_LONGOPTS,
		{ "sync", required_argument, NULL, OPT_SYNC },
		{ "points", required_argument, NULL, OPT_POINTS },
		{ "input", required_argument, NULL, OPT_INPUT },
		{ "latency", required_argument, NULL, OPT_LATENCY },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "emit", required_argument, NULL, OPT_EMIT },
		{ NULL, 0, NULL, 0 },
	};
	const char *modes[3] = { "fsync", "fdatasync", "async" }, *input = NULL;
	size_t nmodes = 3;
	uint64_t npoints = 1000000, emit = 0, latency = 1000;
	int opt, json = 0, have_emit = 0;

	while ((opt = getopt_long(argc, argv, COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		if (common_opt(opt, optarg))
			continue;
		switch (opt) {
		case 'h': return cmd_usage("bench", options, stdout);
		case OPT_SYNC:
			if (!strcmp(optarg, "all"))
				nmodes = 3;
			else if (!strcmp(optarg, "fsync") || !strcmp(optarg, "fdatasync") || !strcmp(optarg, "async"))
				modes[0] = optarg, nmodes = 1;
			else
				return usage_error(
				    "option '--sync': invalid value '%s' (want all, fsync, fdatasync or async)",
				    optarg);
			break;
		case OPT_POINTS:
			if (parse_u64("--points", optarg, &npoints))
				return EXIT_USAGE;
			if (!npoints)
				return usage_error("option '--points': must be at least 1");
			break;
		case OPT_INPUT: input = optarg; break;
		case OPT_LATENCY:
			if (parse_u64("--latency", optarg, &latency))
				return EXIT_USAGE;
			break;
		case OPT_FORMAT:
			if (parse_text_json(optarg, &json))
				return EXIT_USAGE;
			break;
		case OPT_EMIT:
			if (parse_u64("--emit", optarg, &emit))
				return EXIT_USAGE;
			have_emit = 1;
			break;
		default: return option_error(opt, argv);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (have_emit) {
		wal_gen_t *g;
		char line[1024];
		if (wal_gen_new(&g, 1, 100) != 0)
			return EXIT_OPER;
		for (uint64_t i = 0; i < emit; i++) {
			size_t n = wal_gen_line(g, line, sizeof line);
			if (fwrite(line, 1, n, stdout) != n)
				break;
		}
		wal_gen_free(g);
		return EXIT_CLEAN;
	}

	size_t len = 0;
	char *data = NULL;
	if (input) {
		FILE *f = fopen(input, "rb");
		struct stat st;
		if (!f || fstat(fileno(f), &st) != 0) {
			errorf("cannot open '%s': %s", input, strerror(errno));
			return EXIT_OPER;
		}
		data = malloc((size_t)st.st_size + 1);
		len = data ? fread(data, 1, (size_t)st.st_size, f) : 0;
		fclose(f);
		npoints = 0;
		for (size_t i = 0; i < len; i++)
			npoints += data[i] == '\n';
	} else {
		data = generate(npoints, &len);
	}
	if (!data) {
		errorf("out of memory preparing the points");
		return EXIT_OPER;
	}
	char base[PATH_MAX];
	snprintf(base, sizeof base, "%s/walctl-bench-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (g_dir)
		snprintf(base, sizeof base, "%s", g_dir);
	else if (!mkdtemp(base)) {
		errorf("cannot make a directory in /tmp: %s", strerror(errno));
		return EXIT_OPER;
	}
	if (mkdir(base, 0777) != 0 && errno != EEXIST) {
		errorf("cannot make '%s': %s", base, strerror(errno));
		return EXIT_OPER;
	}
	struct result res[3], eng[3];
	int rc = 0;
	memset(eng, 0, sizeof eng);
	for (size_t i = 0; i < nmodes; i++) {
		if (!json && !g_quiet)
			fprintf(stderr, "walctl bench: %s: %" PRIu64 " points...\n", modes[i], npoints);
		if (run_mode(base, modes[i], data, len, npoints, &res[i]) != 0 || res[i].status != 0 ||
		    res[i].points != npoints) {
			errorf("%s run failed (serve exit %d, %" PRIu64 " of %" PRIu64 " points acknowledged)",
			       modes[i], res[i].status, res[i].points, npoints);
			rc = EXIT_OPER;
		}
		if (run_engine(base, modes[i], data, len, &eng[i]) != 0 || eng[i].points != npoints) {
			errorf("%s run of the engine in this process failed (%s; %" PRIu64 " of %" PRIu64
			       " points acknowledged)",
			       modes[i], wal_errmsg(), eng[i].points, npoints);
			rc = EXIT_OPER;
		}
	}
	double sp50 = 0, rp50 = 0;
	int lat_ok = latency ? run_latency(base, data, len, (unsigned)latency, &sp50, &rp50) == 0 : 0;
	if (json) {
		printf("{\"schema\": \"walctl-bench/2\", \"points\": %" PRIu64 ", \"bytes\": %zu, \"modes\": [",
		       npoints, len);
		for (size_t i = 0; i < nmodes; i++) {
			printf("%s{\"sync\": \"%s\", \"seconds\": %.6f, \"points_per_second\": ", i ? ", " : "",
			       res[i].mode, res[i].secs);
			json_num(stdout, "%.0f", (double)npoints / res[i].secs);
			fputs(", \"mb_per_second\": ", stdout);
			json_num(stdout, "%.1f", (double)len / res[i].secs / 1e6);
			printf(", \"syncs\": %" PRIu64
			       ", \"ack_p50_ms\": %.3f, \"ack_p99_ms\": %.3f, \"ack_p999_ms\": %.3f}",
			       res[i].syncs, res[i].p50 * 1e3, res[i].p99 * 1e3, res[i].p999 * 1e3);
		}
		printf("], \"engine\": [");
		for (size_t i = 0; i < nmodes; i++) {
			int ok = eng[i].secs > 0 && eng[i].points == npoints;
			printf("%s{\"sync\": \"%s\", \"seconds\": %.6f, \"points_per_second\": ", i ? ", " : "",
			       modes[i], eng[i].secs);
			json_num(stdout, "%.0f", ok ? (double)npoints / eng[i].secs : NAN);
			fputs(", \"mb_per_second\": ", stdout);
			json_num(stdout, "%.1f", ok ? (double)len / eng[i].secs / 1e6 : NAN);
			printf(", \"syncs\": %" PRIu64 ", \"ack_p50_ms\": %.3f, \"ack_p99_ms\": %.3f}", eng[i].syncs,
			       eng[i].p50 * 1e3, eng[i].p99 * 1e3);
		}
		printf("], \"one_at_a_time\": ");
		if (lat_ok)
			printf("{\"points\": %" PRIu64 ", \"ack_p50_ms\": %.4f, "
			       "\"raw_4k_fdatasync_p50_ms\": %.4f, \"ratio\": %.3f}",
			       latency, sp50 * 1e3, rp50 * 1e3, sp50 / rp50);
		else
			fputs("null", stdout);
		printf("}\n");
	} else {
		printf("%" PRIu64 " points, %.1f MB of line protocol, through 'walctl serve --ack' (whole process)\n",
		       npoints, (double)len / 1e6);
		printf("%-10s %9s %12s %9s %8s %10s %10s %10s\n", "sync", "seconds", "points/s", "MB/s", "syncs",
		       "ack p50", "ack p99", "ack p99.9");
		for (size_t i = 0; i < nmodes; i++)
			printf("%-10s %9.3f %12.0f %9.1f %8" PRIu64 " %8.2fms %8.2fms %8.2fms\n", res[i].mode,
			       res[i].secs, (double)npoints / res[i].secs, (double)len / res[i].secs / 1e6,
			       res[i].syncs, res[i].p50 * 1e3, res[i].p99 * 1e3, res[i].p999 * 1e3);
		printf("the same through the engine in this process (no pipe, no process start)\n");
		for (size_t i = 0; i < nmodes; i++)
			printf("%-10s %9.3f %12.0f %9.1f %8" PRIu64 " %8.2fms %8.2fms\n", modes[i], eng[i].secs,
			       eng[i].secs > 0 ? (double)npoints / eng[i].secs : 0,
			       eng[i].secs > 0 ? (double)len / eng[i].secs / 1e6 : 0, eng[i].syncs, eng[i].p50 * 1e3,
			       eng[i].p99 * 1e3);
		if (lat_ok)
			printf("one at a time (%" PRIu64 " points, fdatasync): median ack %.3f ms; raw 4 KiB append + "
			       "fdatasync %.3f ms; ratio %.2f\n",
			       latency, sp50 * 1e3, rp50 * 1e3, sp50 / rp50);
	}
	if (!g_dir) {
		char cmd[PATH_MAX + 20];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
		if (system(cmd) != 0)
			errorf("could not remove '%s'", base);
	}
	free(data);
	return rc;
}
