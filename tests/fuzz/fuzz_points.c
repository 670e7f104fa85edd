/*
 * fuzz_points.c - libFuzzer target for the CBOR payload decoders (POINTS,
 * SEAL, CHECKPOINT).  Whatever they accept must be re-encodable to the
 * same points.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/walctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static wal_dec_t *d;
	static wal_enc_t *e;
	struct wal_str db;
	struct wal_point pt;
	struct wal_seal s;
	struct wal_checkpoint c;
	size_t n = 0;

	if (!d && (wal_dec_new(&d) || wal_enc_new(&e)))
		abort();
	if (wal_dec_begin(d, data, size, &db) == 0) {
		if (wal_enc_begin(e, db.p, db.n))
			abort();
		while (wal_dec_next(d, &pt) == 1) {
			if (wal_enc_add(e, &pt))
				abort();
			n++;
		}
	}
	(void)n;
	(void)wal_seal_decode(data, size, &s);
	struct wal_str names[4];
	struct wal_loss l;
	(void)wal_checkpoint_decode(data, size, &c, names, 4);
	(void)wal_loss_decode(data, size, &l);
	return 0;
}
