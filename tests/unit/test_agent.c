// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The agent's pure logic: service labels from command lines and cgroups,
 * label escaping, filters, profile names and retention.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "agent.h"
#include "check.h"

static void ident(const char *exe, const char *cmdline, const char *cgroup, struct agent_ident *id)
{
	struct agent_procinfo pi = { .pid = 1 };

	snprintf(pi.exe, sizeof(pi.exe), "%s", exe);
	pi.cmdline = strdup(cmdline);
	snprintf(pi.cgroup, sizeof(pi.cgroup), "%s", cgroup);
	agent_ident__from(&pi, id);
	agent_procinfo__free(&pi);
}

static void test_ident(void)
{
	static const struct {
		const char *exe, *cmdline, *cgroup;
		const char *want_exe, *want_script, *want_cgroup;
	} cases[] = {
		{ "/usr/bin/python3.11", "/usr/bin/python3 -u /srv/app/main.py --port 80",
		  "/system.slice/api.service", "python3.11", "main.py", "api.service" },
		{ "/usr/bin/python3.12", "python3 -m uvicorn app:app", "/", "python3.12", "uvicorn", "" },
		{ "/usr/bin/python3.12", "python3 -mhttp.server 8000", "", "python3.12", "http.server", "" },
		{ "/usr/bin/python3.12", "python3 -c import time; time.sleep(9)", "", "python3.12", "-c", "" },
		{ "/usr/bin/python3.12", "python3 -W ignore -X dev worker.py", "", "python3.12", "worker.py", "" },
		{ "/usr/bin/python3.12", "python3", "", "python3.12", "", "" },
		{ "/usr/bin/python3.11 (deleted)", "python3 a.py", "", "python3.11", "a.py", "" },
		/* a Python run through its own loader: the program names it */
		{ "/opt/py/lib/ld-linux-x86-64.so.2",
		  "/opt/py/lib/ld-linux-x86-64.so.2 --inhibit-cache --library-path /opt/py/lib "
		  "--argv0 /opt/py/bin/python3.14 /opt/py/usr/bin/python3.14 /srv/svc.py x",
		  "", "python3.14", "svc.py", "" },
		/* containers: the id's first 12 hex digits */
		{ "/usr/local/bin/python3.13", "python app.py",
		  "/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope",
		  "python3.13", "app.py", "0123456789ab" },
		{ "/usr/local/bin/python3.13", "python app.py",
		  "/kubepods.slice/kubepods-burstable.slice/cri-containerd-"
		  "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210.scope",
		  "python3.13", "app.py", "fedcba987654" },
	};
	struct agent_ident id;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ident(cases[i].exe, cases[i].cmdline, cases[i].cgroup, &id);
		CHECK(!strcmp(id.exe, cases[i].want_exe), "case %zu: exe '%s', want '%s'", i, id.exe,
		      cases[i].want_exe);
		CHECK(!strcmp(id.script, cases[i].want_script), "case %zu: script '%s', want '%s'", i,
		      id.script, cases[i].want_script);
		CHECK(!strcmp(id.cgroup, cases[i].want_cgroup), "case %zu: cgroup '%s', want '%s'", i,
		      id.cgroup, cases[i].want_cgroup);
	}
	/* huge names are cut, never overflow */
	{
		char *big = malloc(10000);

		memset(big, 'a', 9999);
		big[9999] = 0;
		memcpy(big, "py ", 3);
		ident("/usr/bin/python3", big, big, &id);
		CHECK(strlen(id.script) == sizeof(id.script) - 1, "long script cut: %zu", strlen(id.script));
		CHECK(strlen(id.cgroup) < sizeof(id.cgroup), "long cgroup cut");
		free(big);
	}
}

static char *escaped(const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	agent_label_escape(f, s);
	fclose(f);
	return buf;
}

static void test_label_escape(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "app.py", "app.py" },
		{ "we\"ird", "we\\\"ird" },
		{ "back\\slash", "back\\\\slash" },
		{ "new\nline", "new\\nline" },
		{ "tab\tesc\x1b[31m", "tab?esc?[31m" },
		{ "bad\xff utf8", "bad\xef\xbf\xbd utf8" },
		{ "caf\xc3\xa9", "caf\xc3\xa9" },
		{ "", "" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = escaped(cases[i].in);

		CHECK(got && !strcmp(got, cases[i].want), "escape case %zu: got '%s'", i, got);
		free(got);
	}
}

static void test_filters(void)
{
	struct agent_filter inc = {}, exc = {};
	struct agent_procinfo pi = { .pid = 1 };

	snprintf(pi.exe, sizeof(pi.exe), "/usr/bin/python3.11");
	snprintf(pi.cgroup, sizeof(pi.cgroup), "/system.slice/payments.service");
	pi.cmdline = strdup("python3 /srv/pay/worker.py --queue fast");

	CHECK(agent__wanted(&inc, &exc, &pi), "no filters: everything");
	CHECK(!agent_filter__add(&inc, "cgroup:payments"), "cgroup pattern");
	CHECK(agent__wanted(&inc, &exc, &pi), "included by cgroup");
	CHECK(!agent_filter__add(&exc, "worker\\.py --queue (slow|fast)"), "bare pattern");
	CHECK(!agent__wanted(&inc, &exc, &pi), "excluded by command line");
	agent_filter__free(&exc);
	CHECK(!agent_filter__add(&exc, "exe:python2"), "exe pattern");
	CHECK(agent__wanted(&inc, &exc, &pi), "exe does not match the exclusion");
	agent_filter__free(&inc);
	CHECK(!agent_filter__add(&inc, "exe:^/opt/"), "anchored");
	CHECK(!agent__wanted(&inc, &exc, &pi), "not included");
	CHECK(agent_filter__add(&inc, "cmdline:(") == -EINVAL, "a bad regex is refused");
	agent_filter__free(&inc);
	agent_filter__free(&exc);
	agent_procinfo__free(&pi);
}

static void test_profile_name_and_retention(void)
{
	struct agent_ident id = {};
	char name[256], dir[] = "/tmp/ht-agent-unit-XXXXXX", path[512];
	struct timeval tv[2] = {};
	int i, fd, removed;

	snprintf(id.exe, sizeof(id.exe), "python3.11");
	snprintf(id.script, sizeof(id.script), "../../etc/x;rm -rf /\n.py");
	agent_profile_name(&id, 42, 1700000000, name, sizeof(name));
	CHECK(!strcmp(name, "hangtrace-python3.11-.._.._etc_x_rm__rf___.py-42-1700000000"),
	      "profile name '%s'", name);
	CHECK(!strchr(name, '/'), "no slash in a profile name");

	if (!mkdtemp(dir)) {
		CHECK(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	/* five profiles, aged 1..5 hours; a foreign file; a temporary one */
	for (i = 1; i <= 5; i++) {
		snprintf(path, sizeof(path), "%s/hangtrace-p-s-1-%d.folded", dir, i);
		fd = open(path, O_CREAT | O_WRONLY, 0644);
		close(fd);
		tv[0].tv_sec = tv[1].tv_sec = time(NULL) - i * 3600;
		utimes(path, tv);
	}
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	close(open(path, O_CREAT | O_WRONLY, 0644));
	snprintf(path, sizeof(path), "%s/hangtrace-p-s-1-9.folded.tmp.abcdef", dir);
	close(open(path, O_CREAT | O_WRONLY, 0644));

	removed = agent_profiles__retain(dir, 4 * 3600 + 1800, 100);	/* older than 4.5 h */
	CHECK(removed == 1, "by age: removed %d, want 1", removed);
	removed = agent_profiles__retain(dir, 0, 2);			/* keep the 2 newest */
	CHECK(removed == 2, "by count: removed %d, want 2", removed);
	for (i = 1; i <= 5; i++) {
		snprintf(path, sizeof(path), "%s/hangtrace-p-s-1-%d.folded", dir, i);
		CHECK((access(path, F_OK) == 0) == (i <= 2), "file aged %d h %s", i,
		      i <= 2 ? "kept" : "removed");
	}
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	CHECK(access(path, F_OK) == 0, "a foreign file is left alone");
	unlink(path);
	snprintf(path, sizeof(path), "%s/hangtrace-p-s-1-9.folded.tmp.abcdef", dir);
	CHECK(access(path, F_OK) == 0, "a file being written is left alone");
	unlink(path);
	for (i = 1; i <= 2; i++) {
		snprintf(path, sizeof(path), "%s/hangtrace-p-s-1-%d.folded", dir, i);
		unlink(path);
	}
	rmdir(dir);
}

static void test_histogram(void)
{
	struct agent_service s = {};
	uint64_t total = 0;
	int i;

	agent_metrics__stall(&s, 100000000ULL);		/* 0.1 s: le="0.1" */
	agent_metrics__stall(&s, 400000000ULL);		/* le="0.5" */
	agent_metrics__stall(&s, 3600000000000ULL);	/* an hour: only +Inf */
	CHECK(s.stalls == 3 && s.stall_ns == 3600500000000ULL, "count and sum");
	CHECK(s.stall_bucket[0] == 1 && s.stall_bucket[2] == 1, "bucket placement");
	for (i = 0; i < AGENT_NR_BUCKETS; i++)
		total += s.stall_bucket[i];
	CHECK(total == 2, "beyond the last bucket: +Inf only (%llu)", (unsigned long long)total);
}

int main(void)
{
	test_ident();
	test_label_escape();
	test_filters();
	test_profile_name_and_retention();
	test_histogram();
	return CHECK_SUMMARY();
}
