package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"berth/internal/errdefs"
)

// Offsets in struct seccomp_data, the input of every seccomp filter:
//
//	struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; };
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// badArchAction is returned for a call made through an ABI the profile does
// not list. libseccomp kills the thread; we kill the process, since a process
// with one thread silently gone is worse than a dead one.
const badArchAction = unix.SECCOMP_RET_KILL_PROCESS

// bigEndian tells where the low half of a 64-bit argument lies: seccomp_data
// is in the kernel's (the host's) byte order.
var bigEndian = func() bool {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], 1)
	return b[0] == 0
}()

// argOffsets returns the offsets of the low and high 32-bit words of args[i].
func argOffsets(i uint) (lo, hi uint32) {
	base := uint32(offArgs + 8*i)
	if bigEndian {
		return base + 4, base
	}
	return base, base + 4
}

// rule is one conditional rule of a syscall: when every condition holds
// (they are ANDed), the filter returns ret.
type rule struct {
	conds []specs.LinuxSeccompArg
	ret   uint32
}

// syscallRules is everything a profile says about one syscall on one ABI.
// Conditional rules are tried in profile order, first match wins; when none
// matches, the first unconditional rule decides, else the default action.
type syscallRules struct {
	rules    []rule
	fallback uint32
}

// key identifies rule sets that compile to the same code, so syscalls that
// share one (typically a plain ALLOW) share one handler.
func (s *syscallRules) key() string {
	b := strconv.AppendUint(make([]byte, 0, 16), uint64(s.fallback), 16)
	for _, r := range s.rules {
		b = append(b, '|')
		b = strconv.AppendUint(b, uint64(r.ret), 16)
		for _, c := range r.conds {
			b = append(b, ':')
			b = strconv.AppendUint(b, uint64(c.Index), 10)
			b = append(b, ',')
			b = append(b, c.Op...)
			b = append(b, ',')
			b = strconv.AppendUint(b, c.Value, 16)
			b = append(b, ',')
			b = strconv.AppendUint(b, c.ValueTwo, 16)
		}
	}
	return string(b)
}

// compiled is a profile checked and reduced to return values, before it is
// resolved against the syscall tables of each ABI.
type compiled struct {
	defaultRet uint32
	arches     []*arch
	entries    []entry
	usesNotify bool
}

type entry struct {
	names []string
	rule  rule
}

// parse validates s and turns its actions into seccomp return values.
func parse(s *specs.LinuxSeccomp) (*compiled, error) {
	c := &compiled{}
	if s.DefaultAction == specs.ActNotify {
		return nil, errdefs.InvalidParameter(errors.New("seccomp: SCMP_ACT_NOTIFY cannot be the default action"))
	}
	ret, err := actionValue(s.DefaultAction, s.DefaultErrnoRet, s.ListenerPath != "")
	if err != nil {
		return nil, fmt.Errorf("seccomp defaultAction: %w", err)
	}
	c.defaultRet = ret
	if _, err := filterFlags(s.Flags); err != nil {
		return nil, err
	}

	// The native ABI is always filtered (see nativeArch); the profile's
	// list adds to it.
	if n := nativeArch(); n != nil {
		c.arches = append(c.arches, n)
	}
	for _, name := range s.Architectures {
		a := lookupArch(name)
		if a == nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("seccomp: unknown or unsupported architecture %q", name))
		}
		if !slices.Contains(c.arches, a) {
			c.arches = append(c.arches, a)
		}
	}
	if len(c.arches) == 0 {
		return nil, errdefs.InvalidParameter(errors.New("seccomp: no architecture to filter"))
	}

	for i, sc := range s.Syscalls {
		ret, err := actionValue(sc.Action, sc.ErrnoRet, s.ListenerPath != "")
		if err != nil {
			return nil, fmt.Errorf("seccomp syscalls[%d] %v: %w", i, sc.Names, err)
		}
		if sc.Action == specs.ActNotify {
			c.usesNotify = true
		}
		for _, a := range sc.Args {
			if a.Index >= 6 {
				return nil, errdefs.InvalidParameter(fmt.Errorf("seccomp syscalls[%d] %v: argument index %d out of range 0-5", i, sc.Names, a.Index))
			}
			switch a.Op {
			case specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
				specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual:
			default:
				return nil, errdefs.InvalidParameter(fmt.Errorf("seccomp syscalls[%d] %v: unknown operator %q", i, sc.Names, a.Op))
			}
		}
		c.entries = append(c.entries, entry{names: sc.Names, rule: rule{conds: sc.Args, ret: ret}})
	}
	return c, nil
}

// actionValue returns the SECCOMP_RET_ value of an action. ERRNO and TRACE
// carry errnoRet in their data bits, EPERM when unset (as runc does).
func actionValue(act specs.LinuxSeccompAction, errnoRet *uint, hasListener bool) (uint32, error) {
	data := uint32(unix.EPERM)
	if errnoRet != nil {
		if *errnoRet > unix.SECCOMP_RET_DATA {
			return 0, errdefs.InvalidParameter(fmt.Errorf("errnoRet %d out of range", *errnoRet))
		}
		data = uint32(*errnoRet)
	}
	switch act {
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | data, nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | data, nil
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActNotify:
		if !hasListener {
			return 0, errdefs.InvalidParameter(errors.New("SCMP_ACT_NOTIFY needs a listenerPath"))
		}
		return unix.SECCOMP_RET_USER_NOTIF, nil
	case "":
		return 0, errdefs.InvalidParameter(errors.New("empty action"))
	}
	return 0, errdefs.InvalidParameter(fmt.Errorf("unknown action %q", act))
}

// filterFlags turns the profile's flags into SECCOMP_FILTER_FLAG_ bits.
func filterFlags(flags []specs.LinuxSeccompFlag) (uintptr, error) {
	var bits uintptr
	for _, f := range flags {
		switch f {
		case "SECCOMP_FILTER_FLAG_TSYNC":
			bits |= unix.SECCOMP_FILTER_FLAG_TSYNC
		case specs.LinuxSeccompFlagLog:
			bits |= unix.SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			bits |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case specs.LinuxSeccompFlagWaitKillableRecv:
			bits |= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
		default:
			return 0, errdefs.InvalidParameter(fmt.Errorf("seccomp: unknown flag %q", f))
		}
	}
	return bits, nil
}

// rulesFor resolves the profile's syscall names on a. Names the ABI does not
// have are skipped, as libseccomp does.
func (c *compiled) rulesFor(a *arch) map[uint32]*syscallRules {
	type acc struct {
		rules  []rule
		uncond *uint32
	}
	accs := map[uint32]*acc{}
	for _, e := range c.entries {
		for _, name := range e.names {
			nr, ok := a.syscallNumber(name)
			if !ok {
				continue
			}
			x := accs[nr]
			if x == nil {
				x = &acc{}
				accs[nr] = x
			}
			if len(e.rule.conds) == 0 {
				if x.uncond == nil {
					ret := e.rule.ret
					x.uncond = &ret
				}
				continue
			}
			x.rules = append(x.rules, e.rule)
		}
	}
	out := make(map[uint32]*syscallRules, len(accs))
	for nr, x := range accs {
		s := &syscallRules{rules: x.rules, fallback: c.defaultRet}
		if x.uncond != nil {
			s.fallback = *x.uncond
		}
		// Trailing rules that return the fallback change nothing.
		for len(s.rules) > 0 && s.rules[len(s.rules)-1].ret == s.fallback {
			s.rules = s.rules[:len(s.rules)-1]
		}
		if len(s.rules) == 0 && s.fallback == c.defaultRet {
			continue // same as not listed
		}
		out[nr] = s
	}
	return out
}

// compile builds the whole filter:
//
//	ld arch; for each ABI family: jeq AUDIT_ARCH -> family
//	ret KILL_PROCESS                     (unlisted ABI)
//	family: ld nr; [x86_64: split x32 on the x32 bit]
//	        binary search over syscall-number ranges -> ret ACTION, or
//	        -> handler: argument checks per rule, then ret fallback
func compile(s *specs.LinuxSeccomp) ([]bpf.Instruction, error) {
	c, err := parse(s)
	if err != nil {
		return nil, err
	}
	var asm assembler

	// Group the ABIs by audit arch: x86_64 and x32 share one.
	type family struct {
		audit uint32
		label label
		plain *arch // the ABI without the x32 bit
		x32   *arch
	}
	var families []*family
	for _, a := range c.arches {
		var f *family
		for _, g := range families {
			if g.audit == a.audit {
				f = g
			}
		}
		if f == nil {
			f = &family{audit: a.audit, label: asm.newLabel()}
			families = append(families, f)
		}
		if a.x32 {
			f.x32 = a
		} else {
			f.plain = a
		}
	}

	asm.emit(bpf.LoadAbsolute{Off: offArch, Size: 4})
	for _, f := range families {
		next := asm.newLabel()
		asm.jump(bpf.JumpEqual, f.audit, f.label, next)
		asm.bind(next)
	}
	asm.emit(bpf.RetConstant{Val: badArchAction})

	for _, f := range families {
		asm.bind(f.label)
		asm.emit(bpf.LoadAbsolute{Off: offNr, Size: 4})
		if f.audit == unix.AUDIT_ARCH_X86_64 {
			// Jumps go forwards only, so the family gets its own "bad ABI"
			// return when one of the two is not listed.
			plainL, x32L := asm.newLabel(), asm.newLabel()
			asm.jump(bpf.JumpGreaterOrEqual, x32Bit, x32L, plainL)
			for _, side := range []struct {
				l label
				a *arch
			}{{plainL, f.plain}, {x32L, f.x32}} {
				asm.bind(side.l)
				if side.a == nil {
					asm.emit(bpf.RetConstant{Val: badArchAction})
				} else {
					c.emitABI(&asm, side.a)
				}
			}
			continue
		}
		c.emitABI(&asm, f.plain)
	}

	tooLong := func(n int) error {
		return errdefs.InvalidParameter(fmt.Errorf("seccomp: profile compiles to %d BPF instructions, more than the kernel's limit of %d", n, maxInstructions))
	}
	// Relaxation only adds instructions: stop before spending time on it.
	if len(asm.insns) > maxInstructions {
		return nil, tooLong(len(asm.insns))
	}
	prog, err := asm.assemble()
	if err != nil {
		return nil, err
	}
	if len(prog) > maxInstructions {
		return nil, tooLong(len(prog))
	}
	return prog, nil
}

// segment is a range of syscall numbers [start, next segment's start) that
// all go to one handler.
type segment struct {
	start uint32
	h     *handler
}

type handler struct {
	rules *syscallRules // nil: the default action
	ret   uint32        // for a handler without conditional rules
	label label         // for a handler with conditional rules
	used  bool
}

func (h *handler) simple() bool { return h.rules == nil || len(h.rules.rules) == 0 }

// emitABI emits the code for one ABI, entered with the syscall number in A.
func (c *compiled) emitABI(asm *assembler, a *arch) {
	byNr := c.rulesFor(a)
	nrs := make([]uint32, 0, len(byNr))
	for nr := range byNr {
		nrs = append(nrs, nr)
	}
	slices.Sort(nrs)

	defaultH := &handler{ret: c.defaultRet}
	handlers := map[string]*handler{}
	var ordered []*handler
	segs := []segment{{start: 0, h: defaultH}}
	add := func(start uint32, h *handler) {
		if segs[len(segs)-1].h == h {
			return
		}
		if segs[len(segs)-1].start == start {
			segs[len(segs)-1].h = h
			// Merging may make it equal to the one before.
			if n := len(segs); n > 1 && segs[n-2].h == h {
				segs = segs[:n-1]
			}
			return
		}
		segs = append(segs, segment{start: start, h: h})
	}
	for _, nr := range nrs {
		r := byNr[nr]
		k := r.key()
		h := handlers[k]
		if h == nil {
			h = &handler{rules: r, ret: r.fallback}
			if !h.simple() {
				h.label = asm.newLabel()
			}
			handlers[k] = h
			ordered = append(ordered, h)
		}
		add(nr, h)
		if nr != ^uint32(0) {
			add(nr+1, defaultH)
		}
	}

	c.emitTree(asm, segs)

	for _, h := range ordered {
		if h.simple() || !h.used {
			continue
		}
		asm.bind(h.label)
		for _, r := range h.rules.rules {
			next := asm.newLabel()
			for _, cond := range r.conds {
				emitCond(asm, a.bits64, cond, next)
			}
			asm.emit(bpf.RetConstant{Val: r.ret})
			asm.bind(next)
		}
		asm.emit(bpf.RetConstant{Val: h.rules.fallback})
	}
}

// emitTree emits a binary search over segs with the syscall number in A:
// each inner node is one "jge start" instruction, so a lookup costs
// log2(len(segs)) comparisons instead of one per listed syscall.
func (c *compiled) emitTree(asm *assembler, segs []segment) {
	if len(segs) == 1 {
		c.emitLeaf(asm, segs[0].h)
		return
	}
	mid := len(segs) / 2
	left, right := segs[:mid], segs[mid:]
	jt := c.targetOf(asm, right)
	jf := c.targetOf(asm, left)
	asm.jump(bpf.JumpGreaterOrEqual, segs[mid].start, jt.l, jf.l)
	if jf.emit {
		asm.bind(jf.l)
		c.emitTree(asm, left)
	}
	if jt.emit {
		asm.bind(jt.l)
		c.emitTree(asm, right)
	}
}

type treeTarget struct {
	l    label
	emit bool // the subtree must be emitted at l
}

// targetOf jumps straight to a handler when the subtree is a single
// handler with rules, saving a "ja".
func (c *compiled) targetOf(asm *assembler, segs []segment) treeTarget {
	if len(segs) == 1 && !segs[0].h.simple() {
		segs[0].h.used = true
		return treeTarget{l: segs[0].h.label}
	}
	return treeTarget{l: asm.newLabel(), emit: true}
}

func (c *compiled) emitLeaf(asm *assembler, h *handler) {
	if h.simple() {
		asm.emit(bpf.RetConstant{Val: h.ret})
		return
	}
	h.used = true
	asm.jumpAlways(h.label)
}

// emitCond emits the test of one argument condition: it falls through when
// the condition holds and jumps to fail when it does not. 64-bit arguments
// are compared as two unsigned 32-bit halves, high half first; on 32-bit
// ABIs only the low half exists.
func emitCond(asm *assembler, bits64 bool, c specs.LinuxSeccompArg, fail label) {
	loOff, hiOff := argOffsets(c.Index)
	vlo, vhi := uint32(c.Value), uint32(c.Value>>32)
	load := func(off uint32) { asm.emit(bpf.LoadAbsolute{Off: off, Size: 4}) }
	pass := asm.newLabel()
	defer asm.bind(pass)

	if c.Op == specs.OpMaskedEqual {
		// Value is the mask, ValueTwo the datum: (arg & mask) == datum.
		dlo, dhi := uint32(c.ValueTwo), uint32(c.ValueTwo>>32)
		if bits64 {
			load(hiOff)
			asm.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: vhi})
			cont := asm.newLabel()
			asm.jump(bpf.JumpEqual, dhi, cont, fail)
			asm.bind(cont)
		}
		load(loOff)
		asm.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: vlo})
		asm.jump(bpf.JumpEqual, dlo, pass, fail)
		return
	}

	// The high half decides unless it is equal to vhi; then the low half.
	if bits64 {
		load(hiOff)
		cont := asm.newLabel()
		switch c.Op {
		case specs.OpEqualTo:
			asm.jump(bpf.JumpEqual, vhi, cont, fail)
		case specs.OpNotEqual:
			asm.jump(bpf.JumpEqual, vhi, cont, pass)
		case specs.OpGreaterThan, specs.OpGreaterEqual:
			gt := asm.newLabel()
			asm.jump(bpf.JumpGreaterThan, vhi, pass, gt)
			asm.bind(gt)
			asm.jump(bpf.JumpEqual, vhi, cont, fail)
		case specs.OpLessThan, specs.OpLessEqual:
			gt := asm.newLabel()
			asm.jump(bpf.JumpGreaterThan, vhi, fail, gt)
			asm.bind(gt)
			asm.jump(bpf.JumpEqual, vhi, cont, pass)
		}
		asm.bind(cont)
	}
	load(loOff)
	switch c.Op {
	case specs.OpEqualTo:
		asm.jump(bpf.JumpEqual, vlo, pass, fail)
	case specs.OpNotEqual:
		asm.jump(bpf.JumpEqual, vlo, fail, pass)
	case specs.OpGreaterThan:
		asm.jump(bpf.JumpGreaterThan, vlo, pass, fail)
	case specs.OpGreaterEqual:
		asm.jump(bpf.JumpGreaterOrEqual, vlo, pass, fail)
	case specs.OpLessThan:
		asm.jump(bpf.JumpGreaterOrEqual, vlo, fail, pass)
	case specs.OpLessEqual:
		asm.jump(bpf.JumpGreaterThan, vlo, fail, pass)
	}
}
