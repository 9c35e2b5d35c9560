// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfsym.h"

/* Refuse symbol tables or sections bigger than this: no real libpython comes close. */
#define ELFSYM_MAX_TABLE (512ull << 20)

struct elfsym {
	int fd;
	Elf *elf;
	size_t shnum;
	size_t shstrndx;
	bool have_shstrndx;
	size_t phnum;
	struct elfsym_info info;
};

static uint64_t page_size(void)
{
	long sz = sysconf(_SC_PAGESIZE);

	return sz > 0 ? (uint64_t)sz : 4096;
}

/* [off, off + len) lies within the file. */
static bool in_file(const struct elfsym *es, uint64_t off, uint64_t len)
{
	return off <= es->info.file_size && len <= es->info.file_size - off;
}

struct elfsym *elfsym__open_fd(int fd)
{
	struct elfsym *es;
	struct stat st;
	GElf_Ehdr ehdr;
	int err;

	if (elf_version(EV_CURRENT) == EV_NONE) {
		errno = EINVAL;
		return NULL;
	}
	if (fstat(fd, &st) < 0)
		return NULL;
	if (!S_ISREG(st.st_mode)) {
		errno = ENOEXEC;
		return NULL;
	}
	es = calloc(1, sizeof(*es));
	if (!es)
		return NULL;
	es->fd = fd;
	es->info.file_size = (uint64_t)st.st_size;
	/* ELF_C_READ reads lazily with pread(): a big file costs only what we look at. */
	es->elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!es->elf || elf_kind(es->elf) != ELF_K_ELF || !gelf_getehdr(es->elf, &ehdr)) {
		err = ENOEXEC;
		goto fail;
	}
	es->info.elf_class = gelf_getclass(es->elf);
	es->info.type = ehdr.e_type;
	es->info.machine = ehdr.e_machine;
	if (elf_getshdrnum(es->elf, &es->shnum) < 0)
		es->shnum = 0;
	if (elf_getphdrnum(es->elf, &es->phnum) < 0)
		es->phnum = 0;
	es->have_shstrndx = es->shnum && elf_getshdrstrndx(es->elf, &es->shstrndx) == 0 &&
			    es->shstrndx < es->shnum;
	return es;
fail:
	if (es->elf)
		elf_end(es->elf);
	free(es);
	errno = err;
	return NULL;
}

struct elfsym *elfsym__adopt_fd(int fd)
{
	struct elfsym *es;
	int err;

	if (fd < 0)
		return NULL;
	es = elfsym__open_fd(fd);
	if (!es) {
		err = errno;
		close(fd);
		errno = err;
	}
	return es;
}

struct elfsym *elfsym__open(const char *path)
{
	return elfsym__adopt_fd(open(path, O_RDONLY | O_CLOEXEC));
}

void elfsym__close(struct elfsym *es)
{
	if (!es)
		return;
	elf_end(es->elf);
	close(es->fd);
	free(es);
}

const struct elfsym_info *elfsym__info(const struct elfsym *es)
{
	return &es->info;
}

/* Section header @scn, checked: its bytes (if any) are inside the file. */
static bool get_shdr(struct elfsym *es, Elf_Scn *scn, GElf_Shdr *shdr)
{
	if (!gelf_getshdr(scn, shdr))
		return false;
	if (shdr->sh_type == SHT_NOBITS)
		return true;
	return in_file(es, shdr->sh_offset, shdr->sh_size);
}

static int lookup_in(struct elfsym *es, Elf64_Word type, const char *name, uint64_t *value,
		     uint64_t *size)
{
	Elf_Scn *scn = NULL;
	size_t symsz;

	symsz = gelf_fsize(es->elf, ELF_T_SYM, 1, EV_CURRENT);
	if (!symsz)
		return -ENOENT;
	while ((scn = elf_nextscn(es->elf, scn))) {
		Elf_Data *data;
		GElf_Shdr shdr;
		size_t i, n;

		if (!get_shdr(es, scn, &shdr) || shdr.sh_type != type)
			continue;
		if (shdr.sh_link == 0 || shdr.sh_link >= es->shnum || shdr.sh_size > ELFSYM_MAX_TABLE)
			continue;
		data = elf_getdata(scn, NULL);
		if (!data || !data->d_buf)
			continue;
		n = data->d_size / symsz;
		for (i = 1; i < n; i++) {
			const char *sname;
			GElf_Sym sym;

			if (!gelf_getsym(data, (int)i, &sym))
				break;
			if (sym.st_shndx == SHN_UNDEF || sym.st_name == 0)
				continue;
			/* elf_strptr() checks st_name against the string table's size. */
			sname = elf_strptr(es->elf, shdr.sh_link, sym.st_name);
			if (!sname || strcmp(sname, name))
				continue;
			*value = sym.st_value;
			if (size)
				*size = sym.st_size;
			return 0;
		}
	}
	return -ENOENT;
}

int elfsym__lookup_dyn(struct elfsym *es, const char *name, uint64_t *value, uint64_t *size)
{
	return lookup_in(es, SHT_DYNSYM, name, value, size);
}

int elfsym__lookup(struct elfsym *es, const char *name, uint64_t *value, uint64_t *size)
{
	if (!lookup_in(es, SHT_DYNSYM, name, value, size))
		return 0;
	return lookup_in(es, SHT_SYMTAB, name, value, size);
}

static Elf_Scn *find_section(struct elfsym *es, const char *name, GElf_Shdr *shdr)
{
	Elf_Scn *scn = NULL;

	if (!es->have_shstrndx)
		return NULL;
	while ((scn = elf_nextscn(es->elf, scn))) {
		const char *sname;

		if (!get_shdr(es, scn, shdr))
			continue;
		sname = elf_strptr(es->elf, es->shstrndx, shdr->sh_name);
		if (sname && !strcmp(sname, name))
			return scn;
	}
	return NULL;
}

int elfsym__section(struct elfsym *es, const char *name, uint64_t *addr, uint64_t *size)
{
	GElf_Shdr shdr;

	if (!find_section(es, name, &shdr))
		return -ENOENT;
	*addr = shdr.sh_addr;
	*size = shdr.sh_size;
	return 0;
}

int elfsym__section_data(struct elfsym *es, const char *name, const void **data, size_t *len)
{
	Elf_Data *d;
	GElf_Shdr shdr;
	Elf_Scn *scn;

	scn = find_section(es, name, &shdr);
	if (!scn)
		return -ENOENT;
	if (shdr.sh_type == SHT_NOBITS || (shdr.sh_flags & SHF_COMPRESSED) ||
	    shdr.sh_size > ELFSYM_MAX_TABLE)
		return -ENODATA;
	d = elf_rawdata(scn, NULL);
	if (!d || !d->d_buf || d->d_size > shdr.sh_size)
		return -ENODATA;
	*data = d->d_buf;
	*len = d->d_size;
	return 0;
}

int elfsym__bias(struct elfsym *es, uint64_t file_offset, uint64_t map_start, uint64_t *bias)
{
	uint64_t pg = page_size();
	size_t i;

	for (i = 0; i < es->phnum; i++) {
		uint64_t off_al, va_al;
		GElf_Phdr ph;

		if (!gelf_getphdr(es->elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		off_al = ph.p_offset & ~(pg - 1);
		/* p_offset and p_vaddr are congruent modulo the page size in a loadable file */
		if ((ph.p_offset & (pg - 1)) != (ph.p_vaddr & (pg - 1)))
			continue;
		if (ph.p_offset + ph.p_filesz < ph.p_offset)
			continue;
		if (file_offset < off_al || file_offset >= ph.p_offset + ph.p_filesz)
			continue;
		va_al = ph.p_vaddr & ~(pg - 1);
		*bias = map_start - (va_al + (file_offset - off_al));
		return 0;
	}
	return -ENOENT;
}

int elfsym__read(struct elfsym *es, uint64_t vaddr, void *buf, size_t len)
{
	size_t i;

	for (i = 0; i < es->phnum; i++) {
		uint64_t off, memend, fileend;
		GElf_Phdr ph;
		ssize_t n;

		if (!gelf_getphdr(es->elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (ph.p_vaddr + ph.p_memsz < ph.p_vaddr || ph.p_filesz > ph.p_memsz)
			continue;
		memend = ph.p_vaddr + ph.p_memsz;
		fileend = ph.p_vaddr + ph.p_filesz;
		if (vaddr < ph.p_vaddr || vaddr >= memend)
			continue;
		if (vaddr >= fileend || len > fileend - vaddr)
			return -ENODATA;
		if (!in_file(es, ph.p_offset, ph.p_filesz))
			return -EIO;
		off = ph.p_offset + (vaddr - ph.p_vaddr);
		n = pread(es->fd, buf, len, (off_t)off);
		if (n < 0)
			return -errno;
		return (size_t)n == len ? 0 : -EIO;
	}
	return -ENOENT;
}
