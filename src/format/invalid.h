/* invalid.h - the format layer's way to refuse bytes: say why in err (when
 * the caller wants to know) and return -BKFS_E_CORRUPT. Private to
 * src/format. */
#ifndef BKFS_FORMAT_INVALID_H
#define BKFS_FORMAT_INVALID_H

#define INVALID(...)                                    \
	do {                                            \
		if (err)                                \
			pb_printf(err, __VA_ARGS__);    \
		return -BKFS_E_CORRUPT;                 \
	} while (0)

#endif
