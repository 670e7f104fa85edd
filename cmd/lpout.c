/*
 * lpout.c - line-protocol output on every core, in order.
 *
 * The caller hands POINTS payloads over in the order they are to be
 * printed; worker threads decode and format them, each into a buffer of its
 * own, while the caller goes on reading; buffers are written to the output
 * in the order the payloads came.  A payload that does not decode prints
 * the points before the damage, then its error, exactly as the same
 * payload printed on one thread would.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

#define NJOBS   8
#define THREADS 2

struct job {
	unsigned char *in;
	size_t inlen, incap;
	char *out;
	size_t outlen, outcap;
	char *head;  /* printed before the points (a CONTEXT line), or NULL */
	char *where; /* what an error names */
	int state;   /* 0 free, 1 queued, 2 taken, 3 done */
	int failed;  /* 0, or the exit status bit of what went wrong */
	char err[512];
};

struct lpout {
	FILE *f;
	pthread_t th[THREADS];
	int nth, quit;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job job[NJOBS];
	size_t head, n; /* the oldest job in the ring, and how many are in it */
	int status;     /* EXIT_DAMAGE once a payload did not decode, EXIT_OPER once out of memory */
};

static int grow(char **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 1 << 16;
	while (c < need)
		c *= 2;
	char *q = realloc(*p, c);
	if (!q)
		return -1;
	*p = q;
	*cap = c;
	return 0;
}

/* Decode and format one payload into its job's buffer. */
static void run_job(struct job *j, wal_dec_t *dec)
{
	struct wal_str db;
	struct wal_point pt;
	const char *why = NULL;
	int rc;

	j->outlen = 0;
	j->failed = 0;
	if ((rc = wal_dec_begin(dec, j->in, j->inlen, &db)) == 0) {
		while ((rc = wal_dec_next(dec, &pt)) == 1) {
			size_t room = j->outcap - j->outlen;
			size_t n = wal_lp_format(j->out ? j->out + j->outlen : NULL, room, &pt);
			if (n >= room) {
				if (grow(&j->out, &j->outcap, j->outlen + n + 1) != 0) {
					rc = WAL_ENOMEM;
					why = "out of memory formatting points";
					break;
				}
				wal_lp_format(j->out + j->outlen, n + 1, &pt);
			}
			j->outlen += n;
		}
	}
	if (rc != 0) {
		j->failed = rc == WAL_ENOMEM ? EXIT_OPER : EXIT_DAMAGE;
		snprintf(j->err, sizeof j->err, "%s", why ? why : wal_errmsg());
	}
}

static void *worker(void *arg)
{
	struct lpout *o = arg;
	wal_dec_t *dec = NULL;
	int ok = wal_dec_new(&dec) == 0;

	pthread_mutex_lock(&o->mu);
	for (;;) {
		struct job *j = NULL;
		for (size_t i = 0; i < o->n && !j; i++)
			if (o->job[(o->head + i) % NJOBS].state == 1)
				j = &o->job[(o->head + i) % NJOBS];
		if (!j) {
			if (o->quit)
				break;
			pthread_cond_wait(&o->cv, &o->mu);
			continue;
		}
		j->state = 2;
		pthread_mutex_unlock(&o->mu);
		if (ok) {
			run_job(j, dec);
		} else {
			j->outlen = 0;
			j->failed = EXIT_OPER;
			snprintf(j->err, sizeof j->err, "out of memory decoding points");
		}
		pthread_mutex_lock(&o->mu);
		j->state = 3;
		pthread_cond_broadcast(&o->cv);
	}
	pthread_mutex_unlock(&o->mu);
	wal_dec_free(dec);
	return NULL;
}

int lpout_new(struct lpout **out, FILE *f)
{
	struct lpout *o = calloc(1, sizeof *o);

	*out = NULL;
	if (!o)
		return -1;
	o->f = f;
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	for (int i = 0; i < THREADS; i++) {
		if (pthread_create(&o->th[i], NULL, worker, o) != 0)
			break;
		o->nth++;
	}
	if (!o->nth) {
		pthread_cond_destroy(&o->cv);
		pthread_mutex_destroy(&o->mu);
		free(o);
		return -1;
	}
	*out = o;
	return 0;
}

/* Wait for the oldest job and print it. */
static void drain_one(struct lpout *o)
{
	struct job *j = &o->job[o->head];

	pthread_mutex_lock(&o->mu);
	while (j->state != 3)
		pthread_cond_wait(&o->cv, &o->mu);
	pthread_mutex_unlock(&o->mu);
	if (j->head)
		fputs(j->head, o->f);
	if (j->outlen) /* none when the first point did not decode */
		fwrite(j->out, 1, j->outlen, o->f);
	if (j->failed) {
		fflush(o->f);
		errorf("%s: %s", j->where, j->err);
		o->status |= j->failed;
	}
	free(j->head);
	free(j->where);
	j->head = j->where = NULL;
	pthread_mutex_lock(&o->mu);
	j->state = 0;
	o->head = (o->head + 1) % NJOBS;
	o->n--;
	pthread_mutex_unlock(&o->mu);
}

int lpout_add(struct lpout *o, const unsigned char *payload, size_t len, const char *head, const char *where)
{
	if (o->n == NJOBS)
		drain_one(o);
	struct job *j = &o->job[(o->head + o->n) % NJOBS];
	if (grow((char **)&j->in, &j->incap, len ? len : 1) != 0 || (head && !(j->head = strdup(head))) ||
	    !(j->where = strdup(where))) {
		free(j->head);
		j->head = NULL;
		return -1;
	}
	memcpy(j->in, payload, len);
	j->inlen = len;
	pthread_mutex_lock(&o->mu);
	j->state = 1;
	o->n++;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
	return 0;
}

int lpout_flush(struct lpout *o)
{
	while (o->n)
		drain_one(o);
	return o->status;
}

int lpout_free(struct lpout *o)
{
	if (!o)
		return 0;
	int rc = lpout_flush(o);
	pthread_mutex_lock(&o->mu);
	o->quit = 1;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
	for (int i = 0; i < o->nth; i++)
		pthread_join(o->th[i], NULL);
	for (int i = 0; i < NJOBS; i++) {
		free(o->job[i].in);
		free(o->job[i].out);
	}
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->mu);
	free(o);
	return rc;
}
