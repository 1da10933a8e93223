package seccomp

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// maxInstructions is BPF_MAXINSNS: the kernel refuses longer filters.
const maxInstructions = 4096

// label names a position in a program under construction. Jumps refer to
// labels, not offsets, so code can be generated in any order of thought and
// laid out once at the end.
type label int

// asmInsn is one instruction of a program under construction: either a plain
// BPF instruction, a conditional jump to two labels, or an unconditional jump.
type asmInsn struct {
	plain  bpf.Instruction // non-jump instruction, or nil
	cond   bpf.JumpTest    // for a conditional jump
	val    uint32
	jt, jf label // conditional jump targets
	ja     label // unconditional jump target; used when isJa
	isJa   bool
}

// assembler collects instructions and labels and lays them out with
// jumps relaxed to BPF's limits: a conditional jump's offsets are uint8,
// so one whose target lies more than 255 instructions ahead is rewritten to
// jump to a nearby unconditional "ja" (32-bit offset) that chains onwards.
type assembler struct {
	insns  []asmInsn
	labels []int // label -> index in insns of the instruction it precedes; -1 unbound
}

func (a *assembler) newLabel() label {
	a.labels = append(a.labels, -1)
	return label(len(a.labels) - 1)
}

// bind places l before the next instruction emitted.
func (a *assembler) bind(l label) {
	if a.labels[l] != -1 {
		panic(fmt.Sprintf("seccomp: label %d bound twice", l))
	}
	a.labels[l] = len(a.insns)
}

func (a *assembler) emit(ins bpf.Instruction) { a.insns = append(a.insns, asmInsn{plain: ins}) }

func (a *assembler) jump(cond bpf.JumpTest, val uint32, jt, jf label) {
	a.insns = append(a.insns, asmInsn{cond: cond, val: val, jt: jt, jf: jf})
}

func (a *assembler) jumpAlways(to label) { a.insns = append(a.insns, asmInsn{isJa: true, ja: to}) }

// here returns a new label bound to the next instruction.
func (a *assembler) here() label {
	l := a.newLabel()
	a.bind(l)
	return l
}

// assemble resolves the labels and returns the final program. Jumps must go
// forwards (BPF has no backward jumps); a backward one is a compiler bug.
func (a *assembler) assemble() ([]bpf.Instruction, error) {
	n := len(a.insns)
	// far[i] is set for a conditional jump that needs the long form:
	//   jcond jt=0 jf=1 ; ja T ; ja F   (3 instructions instead of 1).
	far := make([]bool, n)
	addr := make([]int, n+1) // addr[i] is the final position of insns[i]; addr[n] the end
	for {
		pos := 0
		for i := range a.insns {
			addr[i] = pos
			if far[i] {
				pos += 3
			} else {
				pos++
			}
		}
		addr[n] = pos
		changed := false
		for i, in := range a.insns {
			if in.plain != nil || in.isJa || far[i] {
				continue
			}
			for _, t := range []label{in.jt, in.jf} {
				off := addr[a.labels[t]] - addr[i] - 1
				if off > 255 {
					far[i] = true
					changed = true
					break
				}
			}
		}
		if !changed {
			break
		}
	}

	out := make([]bpf.Instruction, 0, addr[n])
	target := func(from int, l label) (int, error) {
		if l < 0 || int(l) >= len(a.labels) || a.labels[l] < 0 {
			return 0, fmt.Errorf("seccomp: unbound label %d", l)
		}
		off := addr[a.labels[l]] - from - 1
		if off < 0 {
			return 0, fmt.Errorf("seccomp: backward jump to label %d", l)
		}
		return off, nil
	}
	for i, in := range a.insns {
		switch {
		case in.plain != nil:
			out = append(out, in.plain)
		case in.isJa:
			off, err := target(addr[i], in.ja)
			if err != nil {
				return nil, err
			}
			out = append(out, bpf.Jump{Skip: uint32(off)})
		case far[i]:
			offT, err := target(addr[i]+1, in.jt)
			if err != nil {
				return nil, err
			}
			offF, err := target(addr[i]+2, in.jf)
			if err != nil {
				return nil, err
			}
			out = append(out,
				bpf.JumpIf{Cond: in.cond, Val: in.val, SkipTrue: 0, SkipFalse: 1},
				bpf.Jump{Skip: uint32(offT)},
				bpf.Jump{Skip: uint32(offF)})
		default:
			offT, err := target(addr[i], in.jt)
			if err != nil {
				return nil, err
			}
			offF, err := target(addr[i], in.jf)
			if err != nil {
				return nil, err
			}
			if offT > 255 || offF > 255 {
				return nil, fmt.Errorf("seccomp: jump relaxation left an offset of %d/%d", offT, offF)
			}
			out = append(out, bpf.JumpIf{Cond: in.cond, Val: in.val, SkipTrue: uint8(offT), SkipFalse: uint8(offF)})
		}
	}
	return out, nil
}
