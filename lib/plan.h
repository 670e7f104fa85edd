/*
 * plan.h - a repair plan as repair.c makes it and apply.c carries it out
 * (private to the library).
 */
#ifndef WALCTL_PLAN_H
#define WALCTL_PLAN_H

#include <limits.h>

#include "internal.h"

enum { P_COPY, P_LOSS };

struct piece {
	int kind;
	uint64_t off; /* P_COPY: frame offset in the original segment */
	uint32_t len; /* P_COPY: payload length */
	uint8_t type;
	uint64_t lsn, last;
};

struct fr {
	uint64_t off, lsn, last;
	uint32_t len;
	uint8_t type;
};

struct sg {
	char name[64];
	struct wal_segment_info info;
	struct fr *f;
	size_t nf, capf;
	int damaged, torn, unreadable, drop_any;
	int leftover; /* of an interrupted merge: every frame is in the merged segment */
	uint64_t torn_off;
	/* the new layout */
	struct piece *pc;
	size_t npc, cappc;
};

struct loss {
	uint64_t first, last;
	int no_points; /* only CHECKPOINT frames given up: no point is lost */
};

struct wal_plan {
	char dir[PATH_MAX], waldir[PATH_MAX + 8];
	struct wal_repair_opts o;
	int lockfd;
	uint64_t wal_id, ckpt;
	char ckpt_seg[64]; /* the segment holding the CHECKPOINT for ckpt */
	int cls;
	char refusal[768];
	char first_damage[400]; /* where and what, of the first damage found */
	struct sg *s;
	size_t ns;
	struct wal_action *a;
	size_t na, capa;
	size_t *a_seg;  /* segment index of each action (or -1) */
	size_t *a_seg2; /* merge: last segment index */
	struct loss *loss;
	size_t nloss, caploss;
	struct {
		uint64_t seg, off;
	} * drop; /* bad payloads a salvage drops */
	size_t ndrop, capdrop;
	/* partitions up to the checkpoint that the replay rebuilds from the WAL */
	struct wal_view_bad *rb;
	size_t nrb, caprb;
	/* ... and those a checkpoint names whose LSNs the WAL no longer holds
	 * all of: what it holds is stored again, the rest is lost */
	struct wal_view_bad *gone;
	size_t ngone, capgone;
	/* ... and those no checkpoint names, though one should: set aside */
	struct wal_view_bad *un;
	size_t nun, capun;
	/* the runs of their LSNs that the WAL lacks: lost */
	struct wal_storage_loss *sl;
	size_t nsl, capsl;
	int rebuild_all;     /* every bad partition a checkpoint names is in rb */
	size_t other_damage; /* damage findings a rebuild does not mend */
	/* what the survey read: the partitions the checkpoints name, and the
	 * entries after the last checkpoint it read (held_ckpt), with their
	 * payloads for a replay */
	wal_named_t *named;
	wal_held_t *held;
	uint64_t held_ckpt;
	struct wal_found found; /* where the WAL ends, for the replay's wal_open */
	/* compact: consumers past the lag limit, marked lost when applied */
	struct wal_consumer_lag *lost_consumers;
	size_t nlost_consumers;
	/* which WAL this is: the id storage names, and another the evidence
	 * names too (a salvage refuses to choose) */
	uint64_t id_named, id_other;
	/* a salvage's new CHECKPOINT naming storage past a lost end: through */
	uint64_t adopted;
	/* truncate --after --rewind-consumers */
	struct wal_consumer_rewind *rewinds;
	size_t nrewinds, caprewinds;
};

/* The survey's entries after the plan's checkpoint, when they are what the
 * WAL holds after the repair (a tail repair keeps every entry the survey
 * returned), else NULL: read the WAL. */
wal_held_t *wal_plan_held(const wal_plan_t *p);

#endif
