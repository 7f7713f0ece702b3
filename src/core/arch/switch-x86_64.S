/*
 * Machine context switch for x86-64, System V ABI.
 *
 * int weft__machine_switch(weft__machine_ctx *from, weft__machine_ctx *to,
 *                          int code);
 * void weft__machine_make(weft__machine_ctx *ctx, void *stack_lo,
 *                         size_t stack_size,
 *                         void (*fn)(void *arg, int code), void *arg);
 *
 * A suspended context is its stack pointer; below it on its own stack lie
 * what a call must preserve: rbp, rbx, r12-r15, the x87 control word and
 * MXCSR, and the return address. The switch saves them, and resumes *to,
 * whose own weft__machine_switch call then returns `code`.
 *
 * Publication (see ctx-asm.h): to->sp is read, then cleared (a running
 * context has no saved stack pointer), and only then is from->sp stored —
 * the store that makes *from resumable by another thread, ordered after
 * every push by x86's total store order. After that store the switch
 * touches neither *from, nor its stack, nor *to.
 *
 * MXCSR is loaded only when the control bits of the context's differ from
 * the running one's: a call keeps those, not the exception flags (System V
 * ABI), and the flags differ between contexts as soon as one of them
 * computed in floating point. ldmxcsr cost 25 ns a switch on the Xeon of
 * this project's machines (BenchmarkSwitch/weft: 61 ns a resume and yield
 * with it, 11 without). fldcw is cheap and stays. aarch64 does the same
 * with FPCR (which holds no flags).
 *
 * The switch returns with an indirect jmp, not ret: a ret would pop the
 * return-stack predictor's entry for the caller of this switch, whose chain
 * is the other context's, and mispredict; the jmp is predicted by the branch
 * target buffer. Callers make the switch a tail call where they can, so that
 * no ret runs between two switches at all.
 *
 * A context made by weft__machine_make starts in weft__machine_boot, which
 * calls fn(arg, code) with the code of the first switch into it; fn must
 * never return (it switches away for good instead).
 */
	.text

/* MXCSR's control bits (masks, rounding, flush-to-zero, denormals-are-
 * zero); the six below are the exception flags, which a call need not
 * keep (System V ABI, 3.2.1). */
#define MXCSR_CONTROL 0xffc0

	.globl	weft__machine_switch
	.hidden	weft__machine_switch
	.type	weft__machine_switch, @function
	.p2align 4
weft__machine_switch:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movl	(%rsp), %r9d	/* before *from is published: then it is not ours */

	movq	(%rsi), %rax
	movq	$0, (%rsi)
	movq	%rsp, (%rdi)
	movq	%rax, %rsp

	movl	%r9d, %r8d
	xorl	(%rsp), %r8d
	testl	$MXCSR_CONTROL, %r8d
	jz	1f
	ldmxcsr	(%rsp)	/* only when its control bits differ: it is slow */
1:	fldcw	4(%rsp)
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	popq	%rcx
	movl	%edx, %eax
	movl	%edx, %esi
	jmp	*%rcx
	.cfi_endproc
	.size	weft__machine_switch, .-weft__machine_switch

/*
 * The first frame, from the new stack pointer up:
 *   0: MXCSR (4 bytes) and x87 control word (2), copied from the maker
 *   8: r15, 16: r14, 24: r13 = arg, 32: r12 = fn, 40: rbx, 48: rbp = 0
 *  56: return address = weft__machine_boot
 *  64: a zero word, so that unwinders stop here
 * The stack pointer is 16-byte aligned, so that once the switch has popped
 * the return address rsp is aligned again and boot's call gives fn the
 * alignment the ABI wants.
 */
	.globl	weft__machine_make
	.hidden	weft__machine_make
	.type	weft__machine_make, @function
	.p2align 4
weft__machine_make:
	.cfi_startproc
	addq	%rdx, %rsi
	andq	$-16, %rsi
	leaq	-80(%rsi), %rax
	stmxcsr	(%rax)
	fnstcw	4(%rax)
	movq	%rcx, 32(%rax)
	movq	%r8, 24(%rax)
	movq	$0, 48(%rax)
	leaq	weft__machine_boot(%rip), %r9
	movq	%r9, 56(%rax)
	movq	$0, 64(%rax)
	movq	%rax, (%rdi)
	ret
	.cfi_endproc
	.size	weft__machine_make, .-weft__machine_make

	.type	weft__machine_boot, @function
	.p2align 4
weft__machine_boot:
	.cfi_startproc
	.cfi_undefined rip
	movq	%r13, %rdi
	callq	*%r12
	ud2
	.cfi_endproc
	.size	weft__machine_boot, .-weft__machine_boot

	.section .note.GNU-stack, "", @progbits
