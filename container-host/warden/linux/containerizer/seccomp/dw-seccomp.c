/*
 * dw-seccomp PROGRAM [ARG...]: loads wardend's seccomp filter for unprivileged jobs, then execs
 * PROGRAM (which inherits the filter, as does everything it starts). job.sh puts it first in an
 * unprivileged job's chain, on the host side, before prlimit/nsenter/setpriv; those need none of
 * what is refused.
 *
 * What is refused (EPERM), after Docker's default profile for a process without CAP_SYS_ADMIN:
 * new namespaces (unshare, and clone with a CLONE_NEW* flag; clone3 answers ENOSYS so libc falls
 * back to clone, whose flags a filter can see), mounts and the new mount API, keyrings, bpf,
 * ptrace and cross-process memory access, perf events, userfaultfd, kernel modules and kexec,
 * reboot, swap, clock and time setting, quotactl, open_by_handle_at, acct, ioperm/iopl and a few
 * obsolete calls. setns and chroot stay allowed: nsenter needs them, and after setpriv drops every
 * capability (and with no way to a new user namespace) they fail on their own.
 *
 * The filter covers x86-64, x32 and i386 system calls; a call from any other architecture kills
 * the process. Exit status 127 with a message when the filter cannot be built or loaded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static const char *const refused[] = {
  "mount", "umount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
  "open_tree", "mount_setattr", "add_key", "request_key", "keyctl", "bpf", "ptrace", "process_vm_readv",
  "process_vm_writev", "kcmp", "perf_event_open", "userfaultfd", "init_module", "finit_module",
  "delete_module", "create_module", "query_module", "get_kernel_syms", "kexec_load", "kexec_file_load",
  "reboot", "swapon", "swapoff", "settimeofday", "stime", "clock_settime", "clock_adjtime", "adjtimex",
  "quotactl", "quotactl_fd", "open_by_handle_at", "name_to_handle_at", "acct", "ioperm", "iopl",
  "lookup_dcookie", "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl", "vm86", "vm86old",
};

static const unsigned long namespace_flags[] = {
  CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
};

static int fail(const char *what, int rc) {
  fprintf(stderr, "dw-seccomp: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
  return 127;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: dw-seccomp PROGRAM [ARG...]\n");
    return 127;
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) return fail("seccomp_init", ENOMEM);
  int rc;
  /* Both other x86 ABIs get the same rules (libseccomp adds each rule to every arch). */
  if ((rc = seccomp_arch_add(ctx, SCMP_ARCH_X86)) < 0 && rc != -EEXIST) return fail("adding i386", rc);
  if ((rc = seccomp_arch_add(ctx, SCMP_ARCH_X32)) < 0 && rc != -EEXIST) return fail("adding x32", rc);
  for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
    int nr = seccomp_syscall_resolve_name(refused[i]);
    if (nr == __NR_SCMP_ERROR) continue; /* not a call on these architectures */
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0)) < 0 && rc != -EDOM) return fail(refused[i], rc);
  }
  for (size_t i = 0; i < sizeof namespace_flags / sizeof *namespace_flags; i++) {
    unsigned long f = namespace_flags[i];
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, f, f))) < 0) return fail("clone", rc);
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, f, f))) < 0) return fail("unshare", rc);
  }
  if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWTIME, CLONE_NEWTIME))) < 0) return fail("unshare", rc);
  if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) < 0) return fail("clone3", rc);
  if ((rc = seccomp_load(ctx)) < 0) return fail("loading the filter", rc);
  seccomp_release(ctx);
  execvp(argv[1], argv + 1);
  fprintf(stderr, "dw-seccomp: cannot run %s: %s\n", argv[1], strerror(errno));
  return 127;
}
