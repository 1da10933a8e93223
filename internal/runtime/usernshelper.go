package runtime

import (
	"encoding/binary"
	"fmt"
	"os"
	goruntime "runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// Joining an existing user namespace needs setns(CLONE_NEWUSER), which the
// kernel refuses to a multi-threaded process, and a Go program is always
// multi-threaded. runc solves it with C code run before the Go runtime
// starts; berth has no cgo. Instead the child that must join a user
// namespace is first a tiny static program (the "userns helper", below)
// that joins it, becomes root there and execs the berth binary, which then
// joins the other namespaces with the capabilities it has in that user
// namespace, exactly as it does without one.
//
// The helper is hand-encoded x86-64 machine code in a minimal ELF64 file
// (one header, one PT_LOAD segment). Usage:
//
//	helper FD PATH ARG0 ARGS...
//
// It parses FD (decimal), setns(FD, CLONE_NEWUSER), closes FD, does
// setresgid(0,0,0), setgroups(0, NULL) (its error is ignored: setgroups may
// be denied in the namespace), setresuid(0,0,0), and execve(PATH,
// [ARG0 ARGS...], envp). Becoming root of the namespace before execve
// matters: otherwise execve drops every capability (the caller's host uid
// is not the namespace's root). Any failure ends it with exit status 127.
//
// Assembly (Intel syntax), checked with objdump -d -Mintel; offsets are
// those of usernsHelperCode:
//
//	00 cmp qword [rsp],3 ; jb F          argc < 3: usage error
//	0b mov rsi,[rsp+16]  ; xor edi,edi   rsi = argv[1], edi = fd
//	12 L: movzx eax,byte [rsi] ; test al,al ; jz D
//	19 sub eax,'0' ; imul edi,edi,10 ; add edi,eax ; inc rsi ; jmp L
//	26 D: mov r12d,edi ; mov esi,0x10000000 (CLONE_NEWUSER) ; mov eax,308 ; syscall
//	35 test rax,rax ; jnz F                setns failed
//	3a mov edi,r12d ; mov eax,3 ; syscall  close(fd)
//	44 xor edi,esi,edx ; mov eax,119 ; syscall ; test rax,rax ; jnz F   setresgid(0,0,0)
//	56 xor edi,esi ; mov eax,116 ; syscall                              setgroups(0,NULL)
//	61 xor edi,esi,edx ; mov eax,117 ; syscall ; test rax,rax ; jnz F   setresuid(0,0,0)
//	73 mov rcx,[rsp] ; mov rdi,[rsp+24] ; lea rsi,[rsp+32] ; lea rdx,[rsp+rcx*8+16]
//	86 mov eax,59 ; syscall                execve(argv[2], &argv[3], envp)
//	8d F: mov edi,127 ; mov eax,231 ; syscall   exit_group(127)
var usernsHelperCode = []byte{
	0x48, 0x83, 0x3c, 0x24, 0x03, // cmp qword [rsp],3
	0x0f, 0x82, 0x82, 0x00, 0x00, 0x00, // jb F (0x8d)
	0x48, 0x8b, 0x74, 0x24, 0x10, // mov rsi,[rsp+16]
	0x31, 0xff, // xor edi,edi
	0x0f, 0xb6, 0x06, // L: movzx eax,byte [rsi]
	0x84, 0xc0, // test al,al
	0x74, 0x0d, // jz D (0x26)
	0x83, 0xe8, 0x30, // sub eax,'0'
	0x6b, 0xff, 0x0a, // imul edi,edi,10
	0x01, 0xc7, // add edi,eax
	0x48, 0xff, 0xc6, // inc rsi
	0xeb, 0xec, // jmp L (0x12)
	0x41, 0x89, 0xfc, // D: mov r12d,edi
	0xbe, 0x00, 0x00, 0x00, 0x10, // mov esi,CLONE_NEWUSER
	0xb8, 0x34, 0x01, 0x00, 0x00, // mov eax,308 (setns)
	0x0f, 0x05, // syscall
	0x48, 0x85, 0xc0, // test rax,rax
	0x75, 0x53, // jnz F
	0x44, 0x89, 0xe7, // mov edi,r12d
	0xb8, 0x03, 0x00, 0x00, 0x00, // mov eax,3 (close)
	0x0f, 0x05, // syscall
	0x31, 0xff, 0x31, 0xf6, 0x31, 0xd2, // xor edi,edi; xor esi,esi; xor edx,edx
	0xb8, 0x77, 0x00, 0x00, 0x00, // mov eax,119 (setresgid)
	0x0f, 0x05, // syscall
	0x48, 0x85, 0xc0, // test rax,rax
	0x75, 0x37, // jnz F
	0x31, 0xff, 0x31, 0xf6, // xor edi,edi; xor esi,esi
	0xb8, 0x74, 0x00, 0x00, 0x00, // mov eax,116 (setgroups)
	0x0f, 0x05, // syscall
	0x31, 0xff, 0x31, 0xf6, 0x31, 0xd2, // xor edi,edi; xor esi,esi; xor edx,edx
	0xb8, 0x75, 0x00, 0x00, 0x00, // mov eax,117 (setresuid)
	0x0f, 0x05, // syscall
	0x48, 0x85, 0xc0, // test rax,rax
	0x75, 0x1a, // jnz F
	0x48, 0x8b, 0x0c, 0x24, // mov rcx,[rsp] (argc)
	0x48, 0x8b, 0x7c, 0x24, 0x18, // mov rdi,[rsp+24] (argv[2])
	0x48, 0x8d, 0x74, 0x24, 0x20, // lea rsi,[rsp+32] (&argv[3])
	0x48, 0x8d, 0x54, 0xcc, 0x10, // lea rdx,[rsp+rcx*8+16] (envp)
	0xb8, 0x3b, 0x00, 0x00, 0x00, // mov eax,59 (execve)
	0x0f, 0x05, // syscall
	0xbf, 0x7f, 0x00, 0x00, 0x00, // F: mov edi,127
	0xb8, 0xe7, 0x00, 0x00, 0x00, // mov eax,231 (exit_group)
	0x0f, 0x05, // syscall
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
