/* darray.h - growable arrays and the lower-bound search over sorted ones.
 *
 * Two forms share one growth rule (double from a first size until the
 * wanted count fits; on failure the array is left as it was):
 *  - DARRAY(T): a typed { data, nr, size } struct with push/room/exit;
 *  - darray_room(p, cap, want, first): for an array kept as a pointer and a
 *    capacity field of its owner (and a count the owner keeps as it likes).
 * Lower layer than everything but util.h: includes nothing else of bkfs. */
#ifndef BKFS_DARRAY_H
#define BKFS_DARRAY_H
#include <stdlib.h>
#include <string.h>
#include "util.h"

/* p (elements of elem bytes, capacity *cap < want) reallocated to hold at
 * least want elements, doubling from first; *cap set to match. NULL without
 * memory, p and *cap then unchanged. */
void *darray_grow(void *p, size_t *cap, size_t elem, size_t want, size_t first);

/* Make the array p (capacity cap) hold want elements: 0 or -BKFS_E_NOMEM. */
#define darray_room(p, cap, want, first)                                                    \
	((size_t)(want) <= (cap) ? 0 : ({                                                   \
		void *_dr_n = darray_grow((p), &(cap), sizeof(*(p)), (want), (first));      \
		_dr_n ? ((p) = _dr_n, 0) : -BKFS_E_NOMEM;                                   \
	}))

#define DARRAY(T)                  \
	struct {                   \
		T *data;           \
		size_t nr, size;   \
	}

#define DARRAY_FIRST 16

/* Room for more elements past nr: 0 or -BKFS_E_NOMEM. */
#define darray_make_room(d, more) darray_room((d).data, (d).size, (d).nr + (more), DARRAY_FIRST)

/* Append x: 0 or -BKFS_E_NOMEM. */
#define darray_push(d, x) (darray_make_room(d, 1) ?: ((d).data[(d).nr++] = (x), 0))

/* Append a zeroed element and return it, NULL without memory. */
#define darray_push_zeroed(d)                                                  \
	(darray_make_room(d, 1) ? NULL                                         \
				: (__typeof__((d).data))memset(&(d).data[(d).nr++], 0, sizeof(*(d).data)))

#define darray_exit(d)                    \
	do {                              \
		free((d).data);           \
		(d).data = NULL;          \
		(d).nr = (d).size = 0;    \
	} while (0)

/* Over an index range [0, nr) sorted so that the predicate `before` (an
 * expression in the index variable named idx) holds for a prefix and not
 * after it: the first index where it fails, nr if none does. A key's lower
 * bound is sorted_lower_bound(nr, i, a[i] < key). */
#define sorted_lower_bound(nr, idx, before)                     \
	({                                                      \
		size_t _lb_lo = 0, _lb_hi = (nr);               \
		while (_lb_lo < _lb_hi) {                       \
			size_t idx = _lb_lo + (_lb_hi - _lb_lo) / 2; \
			if (before)                             \
				_lb_lo = idx + 1;               \
			else                                    \
				_lb_hi = idx;                   \
		}                                               \
		_lb_lo;                                         \
	})

#endif
