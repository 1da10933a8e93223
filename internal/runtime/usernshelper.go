package runtime

import (
	"encoding/binary"
	"fmt"
	"os"
	goruntime "runtime"
	"sync"

	"golang.org/x/sys/unix"

	"berth/internal/errdefs"
	"berth/internal/nsinit"
)

// Joining an existing user namespace needs setns(CLONE_NEWUSER), which the
// kernel refuses to a multi-threaded process, and a Go program is always
// multi-threaded. runc solves it with C code run before the Go runtime
// starts; berth has no cgo. Instead the child that must join a user
// namespace is first a tiny static program (the "userns helper", below)
// that joins it, becomes root there and execs the berth binary, which then
// joins or creates the other namespaces with the capabilities it has in
// that user namespace (see the package doc of internal/nsinit).
//
// The helper is x86-64 machine code in a minimal ELF64 file (one header,
// one PT_LOAD segment). Usage:
//
//	helper USERFD SYNCFD PATH ARG0 ARGS...
//
// It parses USERFD and SYNCFD (decimal), setns(USERFD, CLONE_NEWUSER),
// closes USERFD, does setresgid(0,0,0), setgroups(0, NULL) (its error is
// ignored: setgroups may be denied in the namespace), setresuid(0,0,0),
// and execve(PATH, [ARG0 ARGS...], envp). Becoming root of the namespace
// before execve matters: otherwise execve drops every capability (the
// caller's host uid is not the namespace's root).
//
// On failure it writes a 4-byte status to SYNCFD, {0xff, step, errno as
// 16-bit little endian}, and exits with status 127. The 0xff first byte
// cannot start a sync-socket frame (nsinit.ReadFrame reads it as a helper
// failure), so the parent names the failed step and errno (helperStep).
// Without enough arguments it only exits 127.
//
// usernsHelperAsm is the source (GNU as, Intel syntax); usernsHelperCode
// its bytes, as objdump -d -Mintel lists them (offset, instruction). A test
// reassembles the source where binutils is installed and compares.
const usernsHelperAsm = `.intel_syntax noprefix
.globl _start
_start:
	mov r14d, -1            # SYNCFD unknown yet
	mov r13d, 1             # step 1: arguments
	xor eax, eax
	cmp qword ptr [rsp], 4  # argc >= 4: helper USERFD SYNCFD PATH ...
	jb fail
	mov rsi, [rsp+16]
	call atoi
	mov r12d, edi           # USERFD
	mov rsi, [rsp+24]
	call atoi
	mov r14d, edi           # SYNCFD
	mov r13d, 2             # step 2: setns(USERFD, CLONE_NEWUSER)
	mov edi, r12d
	mov esi, 0x10000000
	mov eax, 308
	syscall
	test rax, rax
	jnz fail
	mov edi, r12d           # close(USERFD)
	mov eax, 3
	syscall
	mov r13d, 3             # step 3: setresgid(0, 0, 0)
	xor edi, edi
	xor esi, esi
	xor edx, edx
	mov eax, 119
	syscall
	test rax, rax
	jnz fail
	xor edi, edi            # setgroups(0, NULL), error ignored
	xor esi, esi
	mov eax, 116
	syscall
	mov r13d, 4             # step 4: setresuid(0, 0, 0)
	xor edi, edi
	xor esi, esi
	xor edx, edx
	mov eax, 117
	syscall
	test rax, rax
	jnz fail
	mov r13d, 5             # step 5: execve(argv[3], &argv[4], envp)
	mov rcx, [rsp]
	mov rdi, [rsp+32]
	lea rsi, [rsp+40]
	lea rdx, [rsp+rcx*8+16]
	mov eax, 59
	syscall
fail:                           # rax = -errno, r13d = step
	test r14d, r14d
	js exit
	neg eax
	shl eax, 16
	shl r13d, 8
	or eax, r13d
	or eax, 0xff
	push rax                # {0xff, step, errno lo, errno hi}
	mov edi, r14d
	mov rsi, rsp
	mov edx, 4
	mov eax, 1
	syscall
exit:
	mov edi, 127
	mov eax, 231
	syscall
atoi:                           # rsi: decimal string -> edi
	xor edi, edi
1:	movzx eax, byte ptr [rsi]
	test al, al
	jz 2f
	sub eax, 0x30
	imul edi, edi, 10
	add edi, eax
	inc rsi
	jmp 1b
2:	ret
`

var usernsHelperCode = []byte{
	0x41, 0xbe, 0xff, 0xff, 0xff, 0xff, // 0 mov r14d,0xffffffff
	0x41, 0xbd, 0x01, 0x00, 0x00, 0x00, // 6 mov r13d,0x1
	0x31, 0xc0, // c xor eax,eax
	0x48, 0x83, 0x3c, 0x24, 0x04, // e cmp [rsp],0x4
	0x0f, 0x82, 0x99, 0x00, 0x00, 0x00, // 13 jb b2 <fail>
	0x48, 0x8b, 0x74, 0x24, 0x10, // 19 mov rsi,[rsp+0x10]
	0xe8, 0xc4, 0x00, 0x00, 0x00, // 1e call e7 <atoi>
	0x41, 0x89, 0xfc, // 23 mov r12d,edi
	0x48, 0x8b, 0x74, 0x24, 0x18, // 26 mov rsi,[rsp+0x18]
	0xe8, 0xb7, 0x00, 0x00, 0x00, // 2b call e7 <atoi>
	0x41, 0x89, 0xfe, // 30 mov r14d,edi
	0x41, 0xbd, 0x02, 0x00, 0x00, 0x00, // 33 mov r13d,0x2
	0x44, 0x89, 0xe7, // 39 mov edi,r12d
	0xbe, 0x00, 0x00, 0x00, 0x10, // 3c mov esi,0x10000000
	0xb8, 0x34, 0x01, 0x00, 0x00, // 41 mov eax,0x134
	0x0f, 0x05, // 46 syscall
	0x48, 0x85, 0xc0, // 48 test rax,rax
	0x75, 0x65, // 4b jne b2 <fail>
	0x44, 0x89, 0xe7, // 4d mov edi,r12d
	0xb8, 0x03, 0x00, 0x00, 0x00, // 50 mov eax,0x3
	0x0f, 0x05, // 55 syscall
	0x41, 0xbd, 0x03, 0x00, 0x00, 0x00, // 57 mov r13d,0x3
	0x31, 0xff, // 5d xor edi,edi
	0x31, 0xf6, // 5f xor esi,esi
	0x31, 0xd2, // 61 xor edx,edx
	0xb8, 0x77, 0x00, 0x00, 0x00, // 63 mov eax,0x77
	0x0f, 0x05, // 68 syscall
	0x48, 0x85, 0xc0, // 6a test rax,rax
	0x75, 0x43, // 6d jne b2 <fail>
	0x31, 0xff, // 6f xor edi,edi
	0x31, 0xf6, // 71 xor esi,esi
	0xb8, 0x74, 0x00, 0x00, 0x00, // 73 mov eax,0x74
	0x0f, 0x05, // 78 syscall
	0x41, 0xbd, 0x04, 0x00, 0x00, 0x00, // 7a mov r13d,0x4
	0x31, 0xff, // 80 xor edi,edi
	0x31, 0xf6, // 82 xor esi,esi
	0x31, 0xd2, // 84 xor edx,edx
	0xb8, 0x75, 0x00, 0x00, 0x00, // 86 mov eax,0x75
	0x0f, 0x05, // 8b syscall
	0x48, 0x85, 0xc0, // 8d test rax,rax
	0x75, 0x20, // 90 jne b2 <fail>
	0x41, 0xbd, 0x05, 0x00, 0x00, 0x00, // 92 mov r13d,0x5
	0x48, 0x8b, 0x0c, 0x24, // 98 mov rcx,[rsp]
	0x48, 0x8b, 0x7c, 0x24, 0x20, // 9c mov rdi,[rsp+0x20]
	0x48, 0x8d, 0x74, 0x24, 0x28, // a1 lea rsi,[rsp+0x28]
	0x48, 0x8d, 0x54, 0xcc, 0x10, // a6 lea rdx,[rsp+rcx*8+0x10]
	0xb8, 0x3b, 0x00, 0x00, 0x00, // ab mov eax,0x3b
	0x0f, 0x05, // b0 syscall
	0x45, 0x85, 0xf6, // b2 test r14d,r14d
	0x78, 0x24, // b5 js db <exit>
	0xf7, 0xd8, // b7 neg eax
	0xc1, 0xe0, 0x10, // b9 shl eax,0x10
	0x41, 0xc1, 0xe5, 0x08, // bc shl r13d,0x8
	0x44, 0x09, 0xe8, // c0 or eax,r13d
	0x0d, 0xff, 0x00, 0x00, 0x00, // c3 or eax,0xff
	0x50,             // c8 push rax
	0x44, 0x89, 0xf7, // c9 mov edi,r14d
	0x48, 0x89, 0xe6, // cc mov rsi,rsp
	0xba, 0x04, 0x00, 0x00, 0x00, // cf mov edx,0x4
	0xb8, 0x01, 0x00, 0x00, 0x00, // d4 mov eax,0x1
	0x0f, 0x05, // d9 syscall
	0xbf, 0x7f, 0x00, 0x00, 0x00, // db mov edi,0x7f
	0xb8, 0xe7, 0x00, 0x00, 0x00, // e0 mov eax,0xe7
	0x0f, 0x05, // e5 syscall
	0x31, 0xff, // e7 xor edi,edi
	0x0f, 0xb6, 0x06, // e9 movzx eax,[rsi]
	0x84, 0xc0, // ec test al,al
	0x74, 0x0d, // ee je fd <atoi+0x16>
	0x83, 0xe8, 0x30, // f0 sub eax,0x30
	0x6b, 0xff, 0x0a, // f3 imul edi,edi,0xa
	0x01, 0xc7, // f6 add edi,eax
	0x48, 0xff, 0xc6, // f8 inc rsi
	0xeb, 0xec, // fb jmp e9 <atoi+0x2>
	0xc3, // fd ret
}

// helperSteps names the helper's steps as its failure status numbers them.
var helperSteps = map[int]string{
	1: "parse arguments",
	2: "setns(CLONE_NEWUSER)",
	3: "setresgid(0, 0, 0)",
	4: "setresuid(0, 0, 0)",
	5: "execve of the berth binary",
}

// helperError turns the helper's failure status into an error that names
// the step and the errno.
func helperError(f *nsinit.HelperFailure) error {
	step, ok := helperSteps[f.Step]
	if !ok {
		step = fmt.Sprintf("step %d", f.Step)
	}
	err := fmt.Errorf("user namespace helper: %s: %w", step, f.Errno)
	switch f.Errno {
	case unix.EPERM, unix.EACCES:
		return errdefs.Forbidden(err)
	case unix.EINVAL, unix.EBADF:
		return errdefs.InvalidParameter(err)
	}
	return err
}

// usernsHelperELF returns the helper as a static x86-64 ELF executable:
// the 64-byte ELF header, one 56-byte program header mapping the whole
// file read+execute at 0x400000, then the code.
func usernsHelperELF() []byte {
	const (
		base    = 0x400000
		ehsize  = 64
		phsize  = 56
		codeOff = ehsize + phsize
	)
	size := uint64(codeOff + len(usernsHelperCode))
	b := make([]byte, 0, size)
	le := binary.LittleEndian
	b = append(b, 0x7f, 'E', 'L', 'F', 2 /* 64-bit */, 1 /* little endian */, 1 /* version */, 0 /* SysV ABI */)
	b = append(b, make([]byte, 8)...) // e_ident padding
	b = le.AppendUint16(b, 2)         // e_type: ET_EXEC
	b = le.AppendUint16(b, 0x3e)      // e_machine: EM_X86_64
	b = le.AppendUint32(b, 1)         // e_version
	b = le.AppendUint64(b, base+codeOff)
	b = le.AppendUint64(b, ehsize) // e_phoff
	b = le.AppendUint64(b, 0)      // e_shoff: no sections
	b = le.AppendUint32(b, 0)      // e_flags
	b = le.AppendUint16(b, ehsize)
	b = le.AppendUint16(b, phsize)
	b = le.AppendUint16(b, 1) // e_phnum
	b = le.AppendUint16(b, 0) // e_shentsize
	b = le.AppendUint16(b, 0) // e_shnum
	b = le.AppendUint16(b, 0) // e_shstrndx
	b = le.AppendUint32(b, 1) // p_type: PT_LOAD
	b = le.AppendUint32(b, 5) // p_flags: PF_R|PF_X
	b = le.AppendUint64(b, 0) // p_offset
	b = le.AppendUint64(b, base)
	b = le.AppendUint64(b, base)
	b = le.AppendUint64(b, size) // p_filesz
	b = le.AppendUint64(b, size) // p_memsz
	b = le.AppendUint64(b, 0x1000)
	return append(b, usernsHelperCode...)
}

// usernsHelperSupported reports whether this architecture has a helper.
func usernsHelperSupported() bool { return goruntime.GOARCH == "amd64" }

var usernsHelper struct {
	once sync.Once
	f    *os.File
	err  error
}

// usernsHelperFile returns the helper in a memfd sealed against writes,
// made once per process: a container process cannot overwrite it, and
// nothing is left on disk.
func usernsHelperFile() (*os.File, error) {
	usernsHelper.once.Do(func() {
		if !usernsHelperSupported() {
			usernsHelper.err = fmt.Errorf("no user namespace helper for %s", goruntime.GOARCH)
			return
		}
		fd, err := unix.MemfdCreate("berth-userns", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
		if err != nil {
			usernsHelper.err = fmt.Errorf("memfd_create for the user namespace helper: %w", err)
			return
		}
		f := os.NewFile(uintptr(fd), "berth-userns (sealed memfd)")
		if _, err := f.Write(usernsHelperELF()); err != nil {
			f.Close()
			usernsHelper.err = fmt.Errorf("write the user namespace helper: %w", err)
			return
		}
		seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
		if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
			f.Close()
			usernsHelper.err = fmt.Errorf("seal the user namespace helper: %w", err)
			return
		}
		usernsHelper.f = f
	})
	return usernsHelper.f, usernsHelper.err
}
