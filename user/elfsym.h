/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A small ELF reader on libelf: symbols, sections, load bias, and bytes at a
 * virtual address, read from the file.  The file is untrusted input (it is
 * whatever another process mapped): every offset and size is checked against
 * the file before it is used.
 */
#ifndef HT_ELFSYM_H
#define HT_ELFSYM_H

#include <stddef.h>
#include <stdint.h>

struct elfsym;

struct elfsym_info {
	int elf_class;			/* ELFCLASS32 / ELFCLASS64 */
	int type;			/* ET_EXEC, ET_DYN, ... */
	int machine;			/* EM_X86_64, ... */
	uint64_t file_size;
};

/* elfsym__open - open and check the ELF file at @path; NULL and errno (ENOEXEC: not ELF). */
struct elfsym *elfsym__open(const char *path);

/* elfsym__open_fd - like elfsym__open(); takes ownership of @fd on success only. */
struct elfsym *elfsym__open_fd(int fd);

/*
 * elfsym__adopt_fd - elfsym__open_fd() that always takes @fd: closed on
 * failure (errno kept).  @fd < 0 (a failed open) gives NULL, errno as is.
 */
struct elfsym *elfsym__adopt_fd(int fd);

void elfsym__close(struct elfsym *es);

const struct elfsym_info *elfsym__info(const struct elfsym *es);

/*
 * elfsym__lookup - value and size of the defined symbol @name, from .dynsym
 * then .symtab.  @size may be NULL.  0 or -ENOENT.
 */
int elfsym__lookup(struct elfsym *es, const char *name, uint64_t *value, uint64_t *size);

/* elfsym__lookup_dyn - the same, .dynsym only (cheap: for scanning many files). */
int elfsym__lookup_dyn(struct elfsym *es, const char *name, uint64_t *value, uint64_t *size);

/* elfsym__section - address and size of the section @name.  0 or -ENOENT. */
int elfsym__section(struct elfsym *es, const char *name, uint64_t *addr, uint64_t *size);

/*
 * elfsym__section_data - the file contents of section @name, owned by @es
 * (valid until elfsym__close()).  0, -ENOENT, or -ENODATA (no bytes in the
 * file, e.g. .bss).
 */
int elfsym__section_data(struct elfsym *es, const char *name, const void **data, size_t *len);

/*
 * elfsym__bias - load bias of the image whose mapping of file offset
 * @file_offset starts at @map_start (use the offset-0 mapping from
 * /proc/PID/maps): map_start - page-aligned p_vaddr of the PT_LOAD holding
 * that offset.  0 or -ENOENT.
 */
int elfsym__bias(struct elfsym *es, uint64_t file_offset, uint64_t map_start, uint64_t *bias);

/*
 * elfsym__read - copy @len bytes at link-time virtual address @vaddr out of
 * the file.  0, -ENOENT (not in any PT_LOAD), -ENODATA (zero-fill part of a
 * segment, e.g. .bss: not in the file) or -EIO.
 */
int elfsym__read(struct elfsym *es, uint64_t vaddr, void *buf, size_t len);

#endif /* HT_ELFSYM_H */
