/*
 * generations.pml: a Promela model of shmkv's generation switch protocol
 * (/work/gen-design.md; the protocol essay at the top of hashtable.c).
 * Checked exhaustively by `make model`; model/README.md says what is modelled,
 * what is abstracted and what each assertion means.
 *
 * Actors
 *   process A: reader threads 0 and 1 sharing one handle (intra-process reclaim:
 *              per-thread records, membarrier, record scan, shmdt);
 *   process B: reader thread 2 with its own handle (inter-process lifetime:
 *              IPC_RMID, attach of a removed-but-attached id, last detach frees);
 *   W:         a writer doing NBUILDS replaces (record, shmget, build, commit or
 *              abort) that may die at every step;
 *   R:         the next writer, which runs generation_recover_locked once W has
 *              ended (EOWNERDEAD or hashtable_recover); it may itself die once,
 *              and then recovery runs again from the start;
 *   F:         a foreign program that may take a freed segment id (id reuse).
 *
 * Bounds (-D): NBUILDS, CALLS (thread 0 of A), CALLS_T1, CALLS_B; NO_CRASH (W
 * never dies); SC_RECORDS (no store buffer: sound when only one thread of A
 * calls).  model/run.sh checks three configurations (README.md).
 *
 * Known-bad variants (-D), each of which spin must refute:
 *   BUG_NO_RECHECK          reader_enter does not re-load h->map after announcing
 *   BUG_NO_MEMBARRIER       retired_reclaim scans the records without membarrier
 *   BUG_RMID_BEFORE_PUBLISH commit removes the old segment before publishing
 *   BUG_RECORD_AFTER_SHMGET the build record is written after shmget
 *   DESIGN_RECOVERY         recovery as gen-design.md first wrote it: IPC_RMID of
 *                           the recorded ids, unpinned and unchecked
 *   BUG_CHECK_UNPINNED      recovery checks the recorded id's header but does not
 *                           hold an attachment between the check and IPC_RMID
 * and one that is not a bug (spin proves it harmless; README.md):
 *   BUG_NO_TABLEID_CHECK    generation_switch checks the generation, not table_id
 */

#ifndef NBUILDS
#define NBUILDS 2          /* replaces W attempts: generations 1..NBUILDS+1 */
#endif
#ifndef CALLS
#define CALLS   2          /* read calls per thread of process A (each may stop earlier) */
#endif
#ifndef CALLS_B
#define CALLS_B 2          /* read calls of process B's reader */
#endif
#ifndef CALLS_T1
#define CALLS_T1 CALLS     /* read calls of process A's second thread */
#endif
#define NSEG    3          /* kernel segment ids for data segments (the root is apart) */
#define NMAPS   3          /* struct generation_map slots per reader process */
#define NONE    255        /* -1 / NULL */

/* kernel segment states */
#define FREE    0          /* no segment: shmat and IPC_RMID fail with EINVAL */
#define LIVE    1
#define DEST    2          /* IPC_RMID'd but attached (SHM_DEST): Linux shmat still succeeds */

/* what a data segment's header names as its table (and, ghost, who owns it) */
#define BLANK   0          /* header not yet written (fresh shmget is zero-filled) */
#define OURS    1
#define FOREIGN 2

/* creator pids (shm_cpid) */
#define PW      1          /* the writer W */
#define PF      2          /* the foreign program */

#define RUNNING 0
#define DEAD    1
#define DONE    2

/* ---------------------------------------------------------------- kernel */
byte k_state[NSEG];
byte k_nattch[NSEG];
byte k_inst[NSEG];         /* ghost: serial of the segment living at this id */
byte k_owner[NSEG];        /* ghost: whose segment it really is */
byte k_creator[NSEG];      /* shm_cpid */
byte k_tid[NSEG];          /* header: table_id (BLANK, OURS, FOREIGN) */
byte k_gen[NSEG];          /* header: generation */
byte k_data[NSEG];         /* the values: each encodes the generation that wrote it */
byte next_inst = 2;        /* 1 is the initial generation */

/* ---------------------------------------------------------------- root segment */
byte cur_gen = 1;          /* the current word: generation << 32 | shmid, */
byte cur_id  = 0;          /* read and written as one atomic word */
bool pend_active;          /* build record: pending_pid != 0 */
byte pend_gen;
byte pend_id = NONE;       /* pending_shmid */
byte ret_id  = NONE;       /* retiring_shmid */

/* ---------------------------------------------------------------- reader processes */
/* map "pointers" are indexes p*NMAPS + i; malloc may hand out any free slot */
byte h_map[2];             /* h->map */
byte h_lock[2];            /* h->switch_lock: 0 free, else thread + 1 */
bool h_rp[2];              /* h->retired_pending */
byte h_threads[2];         /* threads of the process still running */
bool m_used[6];            /* the struct is allocated */
bool m_att[6];             /* its segment is attached in this process */
bool m_ret[6];             /* on the retired list */
byte m_seg[6];             /* word's shmid */
byte m_gen[6];             /* word's generation */
byte m_inst[6];            /* ghost: the segment instance it attached */

byte inside[3];            /* reader_record.inside as other threads see it */
byte sb_val[3];            /* a store to inside still in the thread's store buffer */
bool sb_full[3];

byte last_gen[3];          /* ghost: generation of the thread's previous call */
byte committed_gen = 1;    /* ghost: generation of the last commit that returned */
byte w_state = RUNNING;
bool recovered;
bool started;              /* init has set the initial state up */
bool f_used;               /* the foreign program took an id */
byte closed;               /* reader processes that closed their handle */

/* the current generation is always there, whole and ours: a crash during commit
 * leaves the old or the new one current, never neither, never a removed one */
#define CURRENT_OK (k_state[cur_id] == LIVE && k_owner[cur_id] == OURS && \
                    k_tid[cur_id] == OURS && k_gen[cur_id] == cur_gen && \
                    k_data[cur_id] == cur_gen)


/* ---------------------------------------------------------------- kernel calls */
/* The last detach or IPC_RMID frees a segment.  Its id may at once be handed to
 * a foreign program (once per run): the worst moment for id reuse.  The foreign
 * segment's header is blank, or names another table with the very generation
 * the freed segment had, to fool a check of the generation alone.  It stays
 * attached by its owner to the end. */
inline kfree(s) {
	k_state[s] = FREE; k_data[s] = 0; k_owner[s] = 0; k_creator[s] = 0;
	if
	:: !f_used -> f_used = true;
		k_state[s] = LIVE; k_nattch[s] = 1; k_inst[s] = next_inst; next_inst++;
		k_owner[s] = FOREIGN; k_creator[s] = PF; k_data[s] = 9;
		if
		:: k_tid[s] = BLANK; k_gen[s] = 0
		:: k_tid[s] = FOREIGN                /* k_gen[s] kept */
		fi
	:: skip -> k_tid[s] = BLANK; k_gen[s] = 0   /* free, or reused later */
	fi
}

inline kdetach(s) {                         /* shmdt, or exit of the process */
	assert(k_state[s] != FREE && k_nattch[s] > 0);
	k_nattch[s]--;
	if
	:: k_state[s] == DEST && k_nattch[s] == 0 -> kfree(s)
	:: else
	fi
}

inline krmid(s) {                           /* IPC_RMID: EINVAL on a free id */
	if
	:: k_state[s] == LIVE && k_nattch[s] == 0 -> kfree(s)
	:: k_state[s] == LIVE && k_nattch[s] > 0 -> k_state[s] = DEST
	:: else
	fi
}

/* IPC_RMID by the table's own code: never a segment that is not ours, never the
 * current one */
inline rmid_ours(s) {
	atomic {
		assert(k_state[s] == FREE || (k_owner[s] == OURS && s != cur_id));
		krmid(s)
	}
}

inline kalloc(s, owner, creator) {           /* shmget: any free id, reused or not */
	if
	:: k_state[0] == FREE -> s = 0
	:: k_state[1] == FREE -> s = 1
	:: k_state[2] == FREE -> s = 2
	:: else -> s = NONE                      /* ENOSPC */
	fi;
	if
	:: s != NONE ->
		k_state[s] = LIVE; k_nattch[s] = 0; k_inst[s] = next_inst; next_inst++;
		k_owner[s] = owner; k_creator[s] = creator;
		k_tid[s] = BLANK; k_gen[s] = 0; k_data[s] = 0
	:: else
	fi
}

/* ---------------------------------------------------------------- memory model */
/* Loads and stores are sequentially consistent except the reader's stores to its
 * own record (process A's threads), which may sit in a one-entry store buffer:
 * TSO's store->load reordering, the one the announce/recheck pattern must survive.
 * A store either becomes visible at once or stays buffered until the thread's
 * next store to its record or a membarrier drains it.  Only a record scan reads
 * another thread's record, and every scan follows a membarrier, so "at once" and
 * "as late as possible" cover every scan outcome a flush at any time in between
 * could give (README.md). */
inline announce(t, v) {
	atomic {
		if
		:: t < 2 ->
			if
			:: sb_full[t] -> inside[t] = sb_val[t]
			:: else
			fi;
			if
			:: inside[t] = v; sb_full[t] = false; sb_val[t] = NONE   /* visible now */
#ifndef SC_RECORDS
			:: sb_val[t] = v; sb_full[t] = true                       /* still buffered */
#endif
			fi
		:: else -> inside[t] = v
		fi
	}
}

/* membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED): every thread of the process
 * passes a full fence, so what it stored before is visible to the scan */
inline membarrier(p) {
	if
	:: p == 0 ->
		if :: sb_full[0] -> inside[0] = sb_val[0]; sb_full[0] = false; sb_val[0] = NONE :: else fi;
		if :: sb_full[1] -> inside[1] = sb_val[1]; sb_full[1] = false; sb_val[1] = NONE :: else fi
	:: else
	fi
}

/* ---------------------------------------------------------------- reader side */
/* malloc: the lowest free slot, so a freed map's address comes back (ABA) */
inline map_alloc(p, r) {
	if
	:: !m_used[p*NMAPS + 0] -> r = p*NMAPS + 0
	:: else ->
		if
		:: !m_used[p*NMAPS + 1] -> r = p*NMAPS + 1
		:: else -> assert(!m_used[p*NMAPS + 2]); r = p*NMAPS + 2
		fi
	fi;
	m_used[r] = true
}

inline map_detach(r) {                       /* shmdt + free(map) */
	atomic {
		assert(m_used[r] && m_att[r]);
		kdetach(m_seg[r]);
		m_att[r] = false; m_used[r] = false; m_ret[r] = false
	}
}

#ifdef BUG_NO_TABLEID_CHECK
#define HEADER_OK(s, g) (k_gen[s] == (g))
#else
#define HEADER_OK(s, g) (k_tid[s] == OURS && k_gen[s] == (g))
#endif

/* Process A's threads 0 and 1 share handle 0 (maps 0..2).  Steps that touch
 * disjoint variables of different actors are merged into one atomic step where
 * they commute (README.md, "Granularity"). */

/* retired_reclaim(h), entered holding h->switch_lock right after the membarrier.
 * The reclaiming thread t's own record is NULL (it stored NULL before switching or
 * leaving, and the membarrier made that visible), so the walk of the records
 * reads only the other thread's; reading it and detaching are one step (the
 * other thread's steps in between commute with the detach: README.md). */
inline retired_reclaim_scan(t) {
	atomic {
		seen = inside[1 - t];
		i = 0;
		do
		:: i < NMAPS ->
			if
			:: m_used[i] && m_ret[i] && seen != i -> map_detach(i)
			:: else
			fi;
			i++
		:: else -> break
		od;
		h_rp[0] = (m_ret[0] || m_ret[1] || m_ret[2]);   /* cleared when the list is empty */
		h_lock[0] = 0;                       /* unlock */
		i = 0; r = 0; seen = 0; wg = 0; wi = 0; old = 0
	}
}

#ifdef BUG_NO_MEMBARRIER
#define MEMBARRIER skip
#else
#define MEMBARRIER membarrier(0)
#endif

/* generation_switch(h): under h->switch_lock, attach the current word's segment,
 * validate its header, publish it, retire the old map, reclaim */
inline generation_switch(t) {
	atomic {
		h_lock[0] == 0 -> h_lock[0] = t + 1;
		wg = cur_gen; wi = cur_id;           /* re-read the word */
		if                                   /* h->map changes only under the lock */
		:: m_gen[h_map[0]] == wg && m_seg[h_map[0]] == wi -> r = NONE   /* done already */
		:: else -> r = 0
		fi
	};
	if
	:: r == NONE -> atomic { h_lock[0] = 0; wg = 0; wi = 0; r = 0 }
	:: else ->
sw_retry:
		atomic {                             /* shmat(wi), then check the header */
			if
			:: k_state[wi] == FREE -> r = NONE   /* EINVAL: gone */
			:: else ->                       /* LIVE, or removed but still attached */
				map_alloc(0, r);
				k_nattch[wi]++;
				m_att[r] = true; m_ret[r] = false;
				m_seg[r] = wi; m_gen[r] = wg; m_inst[r] = k_inst[wi];
				if
				:: !HEADER_OK(wi, wg) -> map_detach(r); r = NONE
				:: else
				fi
			fi
		};
		if
		:: r == NONE ->
			/* only a word that is no longer current can name a segment that is
			 * gone or not its generation: the retry terminates */
			atomic { assert(cur_gen != wg || cur_id != wi); wg = cur_gen; wi = cur_id };
			goto sw_retry
		:: else ->
			atomic {                         /* publish (release), retire the old map */
				old = h_map[0];
				h_map[0] = r;
				m_ret[old] = true;
				h_rp[0] = true
			};
			atomic { MEMBARRIER };
			retired_reclaim_scan(t)
		fi
	fi
}

proctype Reader(byte t) {
	byte m, r, i, wg, wi, old, seen, s, cg, must;
	byte calls = 0;

	do
	:: calls < (t == 0 -> CALLS : CALLS_T1) ->
		/* reader_enter */
		atomic { must = committed_gen; m = h_map[0] };   /* must: commits returned so far */
		goto announce_it;
again:
		m = h_map[0];
announce_it:
		announce(t, m);
		if
#ifndef BUG_NO_RECHECK
		:: h_map[0] != m -> goto again       /* a switch raced: re-announce */
#endif
		:: else ->
			atomic {
				assert(m_used[m]);           /* m->word: the map is not freed */
				if
				:: m_gen[m] != cur_gen || m_seg[m] != cur_id ->   /* a commit */
					cg = 0;
					announce(t, NONE)
				:: else -> cg = m_gen[m]
				fi
			};
			if
			:: cg == 0 ->
				generation_switch(t);
				goto again
			:: else
			fi
		fi;
		/* the call's lookups, all through m, then reader_exit's store: the read
		 * is placed last in the window where the thread is inside m, so a
		 * detach anywhere in that window comes before it */
		atomic {
			assert(m_used[m] && m_att[m] && m_gen[m] == cg);   /* no use after shmdt or free */
			s = m_seg[m];
			assert(k_state[s] != FREE && k_inst[s] == m_inst[m]);
			assert(k_data[s] == cg);         /* the answers: one generation, ours */
			assert(cg >= last_gen[t]);       /* never backwards */
			assert(cg >= must);              /* sees every commit that returned */
			last_gen[t] = cg;
			s = 0; cg = 0; must = 0; m = 0;
			announce(t, NONE)
		};
		if
		:: h_rp[0] ->
			atomic { h_lock[0] == 0 -> h_lock[0] = t + 1; MEMBARRIER };
			retired_reclaim_scan(t)
		:: else
		fi;
		calls++
	:: break                                 /* this thread stays idle from now on */
	od;

	/* close: the last thread of the process closes the handle */
	atomic {
		h_threads[0]--;
		if
		:: h_threads[0] == 0 ->
			/* no thread is inside a call: every retired map was detached already */
			assert(!h_rp[0]);
			i = 0;
			do
			:: i < NMAPS ->
				if :: m_used[i] -> map_detach(i) :: else fi;
				i++
			:: else -> break
			od;
			closed++
		:: else
		fi
	}
}

/* Process B: one thread, its own handle.  Nobody else uses its handle or scans its
 * record, so reader_enter's announce and recheck and retired_reclaim's scan are
 * trivially right there; what B exercises is the inter-process side: holding an
 * old generation after IPC_RMID, attaching an id that was removed (and succeeding
 * while someone still has it attached) or freed or reused. */
proctype ReaderB() {
	byte m, r, wg, wi, s, v1, must;
	byte calls = 0;

	do
	:: calls < CALLS_B ->
		atomic { must = committed_gen; m = h_map[1] };
again:
		if
		:: atomic { m_gen[m] != cur_gen || m_seg[m] != cur_id -> wg = cur_gen; wi = cur_id } ->
			atomic {                         /* shmat(wi) and check its header */
				if
				:: k_state[wi] == FREE -> r = NONE
				:: else ->
					map_alloc(1, r);
					k_nattch[wi]++;
					m_att[r] = true; m_ret[r] = false;
					m_seg[r] = wi; m_gen[r] = wg; m_inst[r] = k_inst[wi];
					if
					:: !HEADER_OK(wi, wg) -> map_detach(r); r = NONE
					:: else
					fi
				fi
			};
			if
			:: r == NONE -> assert(cur_gen != wg || cur_id != wi)
			:: else ->                       /* publish; the old map has nobody inside */
				atomic { h_map[1] = r; map_detach(m); m = r }
			fi;
			atomic { r = 0; wg = 0; wi = 0 };
			goto again
		:: else
		fi;
		atomic {
			assert(m_used[m] && m_att[m]);
			s = m_seg[m];
			assert(k_state[s] != FREE && k_inst[s] == m_inst[m]);
			v1 = k_data[s]
		};
		atomic {
			assert(m_used[m] && m_att[m]);
			s = m_seg[m];
			assert(k_state[s] != FREE && k_inst[s] == m_inst[m]);
			assert(v1 == m_gen[m] && k_data[s] == m_gen[m]);
			assert(m_gen[m] >= last_gen[2]);
			assert(m_gen[m] >= must);
			last_gen[2] = m_gen[m];
			s = 0; v1 = 0; must = 0; m = 0;
			calls++
		}
	:: break
	od;
	atomic {                                 /* close, or exit: detach everything */
		if :: m_used[3] -> map_detach(3) :: else fi;
		if :: m_used[4] -> map_detach(4) :: else fi;
		if :: m_used[5] -> map_detach(5) :: else fi;
		closed++
	}
}

/* ---------------------------------------------------------------- writer */
/* W dies (at every step: W_STEP) or does the step.  A step that writes only the
 * build record, which nobody but the recovering writer (after W's end) reads, is
 * folded into the next step W takes, with a crash point between the two
 * (W_DIE_OR), so readers do not interleave with steps they cannot see. */
#ifdef NO_CRASH
#define W_STEP(x) atomic { x }
#define W_DIE_OR  skip
#else
#define W_STEP(x) if :: goto w_crash :: atomic { x } fi
#define W_DIE_OR  if :: goto w_crash :: skip fi
#endif

proctype Writer() {
	byte b = 0, s, old;
	byte wmap = 0;                           /* its handle's attachment (generation 1) */
	byte bmap = NONE;                        /* the builder's attachment */

	do
	:: b < NBUILDS ->
		/* replace_begin (the writer lock is held from here to commit/abort):
		 * record the build, then shmget(IPC_PRIVATE) */
		W_STEP(
#ifndef BUG_RECORD_AFTER_SHMGET
			pend_active = true; pend_gen = cur_gen + 1; pend_id = NONE;
			W_DIE_OR;
#endif
			kalloc(s, OURS, PW)
#ifdef BUG_RECORD_AFTER_SHMGET
			; W_DIE_OR;
			pend_active = true; pend_gen = cur_gen + 1; pend_id = NONE
#endif
		);
		if
		:: s == NONE ->                      /* ENOSPC: begin fails */
			W_STEP(pend_active = false; pend_gen = 0);
			goto next_build
		:: else
		fi;
		/* store pending_shmid; IPC_SET, shmat (a death before or after the shmat
		 * leaves the same kernel state: the exit detaches) */
		W_STEP(pend_id = s; k_nattch[s]++; bmap = s);
		/* write the header, then builder_put... */
		W_STEP(k_tid[s] = OURS; k_gen[s] = pend_gen; k_data[s] = pend_gen);
		if
		:: /* replace_abort */
			W_STEP(rmid_ours(s));
			W_STEP(pend_active = false; pend_id = NONE; pend_gen = 0;
			       kdetach(bmap); bmap = NONE)
		:: /* replace_commit */
			old = cur_id;
			assert(wmap == old);             /* the old id is pinned by our attachment */
#ifdef BUG_RMID_BEFORE_PUBLISH
			W_STEP(ret_id = old; W_DIE_OR; krmid(old));
			W_STEP(cur_gen = pend_gen; cur_id = s);
#else
			/* retiring_shmid = old; store the current word: the one publishing step */
			W_STEP(ret_id = old; W_DIE_OR; cur_gen = pend_gen; cur_id = s);
			W_STEP(rmid_ours(old));
#endif
			/* clear the record, hand the builder's mapping to the handle (its old
			 * map is detached: no reader thread in W), return */
			W_STEP(ret_id = NONE; pend_active = false; pend_id = NONE; pend_gen = 0;
			       W_DIE_OR;
			       wmap = bmap; bmap = NONE; kdetach(old); committed_gen = cur_gen);
			old = 0
		fi;
next_build:
		s = 0;
		b++
	:: else -> break
	od;
	atomic { kdetach(wmap); w_state = DONE };
	goto w_end;

w_crash:	/* the process dies: the kernel detaches everything it had attached */
	atomic {
		if :: wmap != NONE -> kdetach(wmap) :: else fi;
		if :: bmap != NONE -> kdetach(bmap) :: else fi;
		w_state = DEAD
	};
w_end:	skip
}

/* ---------------------------------------------------------------- recovery */
#define R_CRASH_POINT if :: !r_crashed -> goto r_crash :: skip fi
#define PENDING  1
#define RETIRING 2

/* The recorded id still names the segment the dead writer meant: ours, not the
 * current one, and for a pending id our pending generation or a blank header
 * made by the dead writer; for a retiring id an older generation of ours */
#define IS_OURS(id, kind) ((id) != cur_id && \
	(((kind) == PENDING && ((k_tid[id] == OURS && k_gen[id] == pend_gen) || \
	                        (k_tid[id] == BLANK && k_creator[id] == PW))) || \
	 ((kind) == RETIRING && k_tid[id] == OURS && k_gen[id] < cur_gen)))

#if defined(DESIGN_RECOVERY)
/* gen-design.md as written: remove the recorded id unless it is the current one */
inline remove_recorded(id, kind) {
	if
	:: id != cur_id -> rmid_ours(id)
	:: else
	fi
}
#elif defined(BUG_CHECK_UNPINNED)
/* the check without holding an attachment: the id may be freed and handed to
 * someone else between the check and the IPC_RMID */
inline remove_recorded(id, kind) {
	if
	:: k_state[id] != FREE && IS_OURS(id, kind) -> rmid_ours(id)
	:: else
	fi
}
#else
/* pin, check, remove: attaching the id first means it cannot be freed and handed
 * to someone else between the check and the IPC_RMID */
inline remove_recorded(id, kind) {
	atomic {                                 /* shmat(id, SHM_RDONLY) */
		if
		:: k_state[id] != FREE -> k_nattch[id]++; att = id
		:: else -> att = NONE                /* gone: nothing to remove */
		fi
	};
	if
	:: att != NONE ->
		R_CRASH_POINT;
		if
		:: IS_OURS(id, kind) -> rmid_ours(id)
		:: else
		fi;
		R_CRASH_POINT;
		atomic { kdetach(att); att = NONE }
	:: else
	fi
}
#endif

proctype Recoverer() {
	byte s, att = NONE;
	bool r_crashed = false;

	w_state != RUNNING;                      /* EOWNERDEAD, or hashtable_recover after W */
r_start:
	if
	:: pend_active ->
		if
		:: pend_id != NONE -> remove_recorded(pend_id, PENDING)
		:: else ->                           /* died between the record and storing the id */
			s = 0;
			do
			:: s < NSEG ->
				/* cpid == pending_pid, size, ctime >= pending_time: every segment W
				 * made matches when they were made in the same second */
				if
				:: k_state[s] != FREE && k_creator[s] == PW && s != cur_id ->
					remove_recorded(s, PENDING)
				:: else
				fi;
				s++
			:: else -> break
			od
		fi;
		R_CRASH_POINT;
		if
		:: ret_id != NONE -> remove_recorded(ret_id, RETIRING)
		:: else
		fi;
		R_CRASH_POINT;
		atomic { pend_active = false; pend_id = NONE; ret_id = NONE; pend_gen = 0 }
	:: else
	fi;
	recovered = true;
	goto r_end;

r_crash:	/* the recovering writer dies too; the next one starts over */
	atomic {
		if :: att != NONE -> kdetach(att); att = NONE :: else fi;
		r_crashed = true
	};
	goto r_start;
r_end:	skip
}

/* ---------------------------------------------------------------- properties */
/* at every state: the current generation is there, whole and ours */
active proctype CurrentAlwaysServing() {
end:	atomic { started && !CURRENT_OK -> assert(CURRENT_OK) }
}

/* at the end: nothing leaked */
active proctype NothingLeaks() {
	byte s;
	atomic {
		closed == 2 && w_state != RUNNING && recovered ->
		assert(pend_active == false && ret_id == NONE);
		s = 0;
		do
		:: s < NSEG ->
			if
			:: s == cur_id -> assert(CURRENT_OK && k_nattch[s] == 0)
			:: k_owner[s] == FOREIGN -> assert(k_state[s] == LIVE)   /* not ours, not touched */
			:: else -> assert(k_state[s] == FREE)
			fi;
			s++
		:: else -> break
		od
	}
}

init {
	atomic {
		/* generation 1 at id 0, attached by A's and B's handles and W's */
		k_state[0] = LIVE; k_nattch[0] = 3; k_inst[0] = 1; k_owner[0] = OURS;
		k_creator[0] = PW; k_tid[0] = OURS; k_gen[0] = 1; k_data[0] = 1;
		m_used[0] = true; m_att[0] = true; m_seg[0] = 0; m_gen[0] = 1; m_inst[0] = 1;
		m_used[3] = true; m_att[3] = true; m_seg[3] = 0; m_gen[3] = 1; m_inst[3] = 1;
		h_map[0] = 0; h_map[1] = 3;
		h_threads[0] = 2;
		inside[0] = NONE; inside[1] = NONE; inside[2] = NONE;
		sb_val[0] = NONE; sb_val[1] = NONE; sb_val[2] = NONE;
		last_gen[0] = 1; last_gen[1] = 1; last_gen[2] = 1;
		started = true;
		run Reader(0); run Reader(1); run ReaderB();
		run Writer(); run Recoverer()
	}
}
