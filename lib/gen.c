/*
 * gen.c - a deterministic generator of points shaped like the TSBS cpu-only
 * workload: measurement "cpu", 10 tags describing a host, 10 integer usage
 * fields, one point per host every 10 s.  About 330 bytes of line protocol
 * per point.  Used by the benchmarks, the demo and the tests.
 */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

struct wal_gen {
	uint64_t state, n;
	unsigned hosts;
	int64_t t0;
	unsigned char usage[10];
};

static const char *const regions[] = { "us-east-1",      "us-west-1",      "us-west-2",
	                               "eu-west-1",      "eu-central-1",   "ap-southeast-1",
	                               "ap-southeast-2", "ap-northeast-1", "sa-east-1" };
static const char *const oses[] = { "Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10" };
static const char *const archs[] = { "x64", "x86" };
static const char *const teams[] = { "SF", "NYC", "LON", "CHI" };
static const char *const envs[] = { "production", "staging", "test" };
static const char *const fields[] = { "usage_user", "usage_system",  "usage_idle",  "usage_nice",  "usage_iowait",
	                              "usage_irq",  "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice" };

static uint64_t next(wal_gen_t *g)
{
	/* xorshift64* */
	g->state ^= g->state >> 12;
	g->state ^= g->state << 25;
	g->state ^= g->state >> 27;
	return g->state * 2685821657736338717ull;
}

int wal_gen_new(wal_gen_t **out, uint64_t seed, unsigned hosts)
{
	wal_gen_t *g = calloc(1, sizeof *g);

	*out = NULL;
	if (!g)
		return wal_seterr(WAL_ENOMEM, "out of memory");
	g->state = seed ? seed : 0x9e3779b97f4a7c15ull;
	g->hosts = hosts ? hosts : 100;
	g->t0 = 1451606400000000000ll; /* 2016-01-01, as TSBS */
	for (int i = 0; i < 10; i++)
		g->usage[i] = (unsigned char)(next(g) % 101);
	*out = g;
	return 0;
}

void wal_gen_free(wal_gen_t *g) { free(g); }

size_t wal_gen_line(wal_gen_t *g, char *buf, size_t cap)
{
	unsigned h = (unsigned)(g->n % g->hosts);
	int64_t t = g->t0 + (int64_t)(g->n / g->hosts) * 10000000000ll;
	/* Host attributes are a pure function of the host number. */
	uint64_t a = (uint64_t)h * 0x9e3779b97f4a7c15ull + 7;
	int n = snprintf(buf, cap,
	                 "cpu,hostname=host_%u,region=%s,datacenter=%s%c,rack=%u,os=%s,arch=%s,team=%s,"
	                 "service=%u,service_version=%u,service_environment=%s ",
	                 h, regions[a % 9], regions[a % 9], (char)('a' + (a >> 8) % 3), (unsigned)((a >> 12) % 100),
	                 oses[(a >> 20) % 3], archs[(a >> 24) % 2], teams[(a >> 28) % 4], (unsigned)((a >> 32) % 20),
	                 (unsigned)((a >> 40) % 2), envs[(a >> 44) % 3]);
	for (int i = 0; i < 10 && n > 0 && (size_t)n < cap; i++) {
		int step = (int)(next(g) % 11) - 5;
		int v = g->usage[i] + step;
		g->usage[i] = (unsigned char)(v < 0 ? 0 : v > 100 ? 100 : v);
		n += snprintf(buf + n, cap - (size_t)n, "%s%s=%ui", i ? "," : "", fields[i], g->usage[i]);
	}
	if (n > 0 && (size_t)n < cap)
		n += snprintf(buf + n, cap - (size_t)n, " %lld\n", (long long)t);
	g->n++;
	return n < 0 ? 0 : (size_t)n;
}
