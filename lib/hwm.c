/*
 * hwm.c - the data directory's LSN high-water mark.
 *
 * An LSN is the identity of an entry everywhere in a data directory: in
 * segments, in partitions and the checkpoints that name them, in consumer
 * cursors, in quarantine records and in acks.  The invariant this module
 * owns: every LSN the directory has shown anyone stays below the next LSN
 * any writer hands out, after any repair, power cut or missing file.
 *
 * The WAL's own end is read by the scan that opens it; what this module
 * adds is the evidence outside the WAL, read from the files alone:
 *
 *  - hard evidence, which says LSNs existed that the WAL should still hold:
 *    a partition (its name's last LSN) and a live consumer's cursor.  A WAL
 *    that ends below it lost its end: damage, which a writer refuses and a
 *    salvage records as a known loss.
 *  - removed LSNs: the LSN ranges a repair of this WAL took out and saved in
 *    the quarantine (truncate --after).  They were shown to someone and must
 *    not be handed out again, but their loss is known: a writer that opens
 *    the WAL records them as a LOSS entry and goes on past them.
 *
 * One piece of evidence is the WAL's own: a newest segment that ends with a
 * SEAL.  The writer makes the next segment durable (as NAME.next) before it
 * writes the SEAL and gives it its name after, so a SEAL proves that a
 * segment from the LSN after it existed (wal_hwm_seal).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* The highest LSN a MANIFEST of WAL wal_id records as removed, with the
 * command that removed it. */
static int manifest_removed(const char *path, uint64_t wal_id, uint64_t *lsn, char *cmd, size_t cap)
{
	unsigned char *b;
	size_t n;
	int rc;

	*lsn = 0;
	if ((rc = wal_q_read_whole(path, &b, &n)) != 0)
		return rc == WAL_ENOENT ? 0 : rc;
	char *text = realloc(b, n + 1);
	if (!text) {
		free(b);
		return wal_seterr(WAL_ENOMEM, "out of memory");
	}
	text[n] = 0;
	int ours = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "command: ", 9)) {
			snprintf(cmd, cap, "%s", line + 9);
		} else if (!strncmp(line, "wal_id: ", 8)) {
			ours = strtoull(line + 8, NULL, 16) == wal_id;
		} else if (!strncmp(line, "file=wal/", 9)) {
			struct wal_q_field f[32];
			char buf[4096];
			int nf = wal_q_parse(line, f, 32, buf, sizeof buf);
			const char *r = nf > 0 ? wal_q_get(f, (size_t)nf, "lsn") : NULL;
			const char *dash = r ? strchr(r, '-') : NULL;
			uint64_t last = dash ? strtoull(dash + 1, NULL, 10) : 0;
			if (ours && last > *lsn)
				*lsn = last;
		}
	}
	if (!ours)
		*lsn = 0;
	free(text);
	return 0;
}

int wal_hwm_gather(const char *datadir, uint64_t wal_id, struct wal_hwm *h)
{
	struct wal_part_ref *parts;
	struct wal_consumer *cv;
	size_t np, nc;
	char q[PATH_MAX];
	int rc;

	memset(h, 0, sizeof *h);
	if ((rc = wal_part_list(datadir, &parts, &np)) != 0)
		return rc;
	size_t top = np;
	for (size_t i = 0; i < np; i++)
		if (parts[i].last_lsn > h->hard) {
			h->hard = parts[i].last_lsn;
			top = i;
			snprintf(h->hard_what, sizeof h->hard_what, "partition 'data/%s'", parts[i].rel);
		}
	if (top < np) {
		/* whose LSNs they are: storage names its WAL */
		char path[PATH_MAX + 320];
		snprintf(path, sizeof path, "%s/data/%s", datadir, parts[top].rel);
		if (wal_part_wal_id(path, &h->hard_wal_id) != 0)
			h->hard_wal_id = 0;
	}
	free(parts);
	/* a cursor file that cannot be read is verify's to report */
	if (wal_consumers_list(datadir, &cv, &nc) == 0) {
		for (size_t i = 0; i < nc; i++)
			if (!cv[i].lost && cv[i].lsn > h->hard) {
				h->hard = cv[i].lsn;
				h->hard_wal_id = 0;
				snprintf(h->hard_what, sizeof h->hard_what, "the cursor of consumer '%s'", cv[i].name);
			}
		free(cv);
	}
	snprintf(q, sizeof q, "%s/quarantine", datadir);
	DIR *d = opendir(q);
	if (!d)
		return errno == ENOENT ? 0 : wal_seterr(wal_errno_code(errno), "cannot open '%s': %s", q, strerror(errno));
	struct dirent *de;
	while (rc == 0 && (de = readdir(d))) {
		char path[PATH_MAX + 300], cmd[200] = "";
		uint64_t lsn;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s/MANIFEST", q, de->d_name);
		if ((rc = manifest_removed(path, wal_id, &lsn, cmd, sizeof cmd)) == 0 && lsn > h->removed) {
			h->removed = lsn;
			snprintf(h->removed_what, sizeof h->removed_what, "%s (quarantine/%s)", cmd, de->d_name);
		}
	}
	closedir(d);
	return rc;
}

/* Does DIR/NAME.next hold the header of the segment that continues the WAL
 * after LAST: a rotation cut off between the SEAL and the rename? */
int wal_next_pending(const char *waldir, uint64_t wal_id, uint64_t last)
{
	char name[32], path[PATH_MAX + 64];
	unsigned char hb[WAL_SEG_HEADER_SIZE];
	struct seg_header sh;
	size_t got = 0;
	int fd;

	seg_name(name, last + 1);
	snprintf(path, sizeof path, "%s/%s.next", waldir, name);
	if (fs_open_file(path, O_RDONLY, &fd) != 0)
		return 0;
	int ok = fs_read_all(fd, hb, sizeof hb, 0, &got) == 0 && got == sizeof hb &&
	         !seg_header_decode(hb, sizeof hb, &sh) && sh.wal_id == wal_id && sh.first_lsn == last + 1 &&
	         sh.prev_last_lsn == last;
	close(fd);
	return ok;
}

void wal_hwm_seal(const char *waldir, const struct wal_segment_info *newest, uint64_t wal_id, uint64_t last,
                  struct wal_hwm *h)
{
	if (!newest || !newest->sealed || last + 1 <= h->hard || h->removed > last ||
	    wal_next_pending(waldir, wal_id, last))
		return;
	h->hard = last + 1;
	h->hard_wal_id = wal_id;
	snprintf(h->hard_what, sizeof h->hard_what, "the SEAL that ends segment '%s'", newest->name);
}
