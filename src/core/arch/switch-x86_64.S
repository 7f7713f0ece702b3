/*
 * Machine context switch for x86-64, System V ABI.
 *
 * void *weft__machine_switch(weft__machine_ctx *from, weft__machine_ctx *to,
 *                            void *value);
 * void weft__machine_make(weft__machine_ctx *ctx, void *stack_lo,
 *                         size_t stack_size,
 *                         void (*fn)(void *arg, void *value), void *arg);
 *
 * A suspended context is its stack pointer; below it on its own stack lie
 * what a call must preserve: rbp, rbx, r12-r15, the x87 control word and
 * MXCSR. The switch saves them, stores rsp in *from, loads to->sp, restores
 * them and returns `value` in the resumed context. The FP control words are
 * only reloaded when they differ from the running ones: ldmxcsr and fldcw are
 * the slowest part of a switch, and coroutines rarely change them.
 *
 * A context made by weft__machine_make starts in weft__machine_boot, which
 * calls fn(arg, value) with the value of the first switch into it; fn must
 * never return (it switches away for good instead).
 */
	.text

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
	movl	(%rsp), %r8d
	movzwl	4(%rsp), %r9d

	movq	%rsp, (%rdi)
	movq	(%rsi), %rsp

	cmpl	(%rsp), %r8d
	jne	.Lload_mxcsr
.Lmxcsr_done:
	cmpw	4(%rsp), %r9w
	jne	.Lload_fpucw
.Lfpucw_done:
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	movq	%rdx, %rax
	movq	%rdx, %rsi
	ret
.Lload_mxcsr:
	ldmxcsr	(%rsp)
	jmp	.Lmxcsr_done
.Lload_fpucw:
	fldcw	4(%rsp)
	jmp	.Lfpucw_done
	.cfi_endproc
	.size	weft__machine_switch, .-weft__machine_switch

/*
 * The first frame, from the new stack pointer up:
 *   0: MXCSR (4 bytes) and x87 control word (2), copied from the maker
 *   8: r15, 16: r14, 24: r13 = arg, 32: r12 = fn, 40: rbx, 48: rbp = 0
 *  56: return address = weft__machine_boot
 *  64: a zero word, so that unwinders stop here
 * The stack pointer is 16-byte aligned, so that after the switch's ret
 * rsp is aligned again and boot's call gives fn the alignment the ABI wants.
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
	leaq	weft__machine_boot(%rip), %r8
	movq	%r8, 56(%rax)
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
