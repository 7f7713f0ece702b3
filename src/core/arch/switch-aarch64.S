/*
 * Machine context switch for aarch64, AAPCS64.
 *
 * int weft__machine_switch(weft__machine_ctx *from, weft__machine_ctx *to,
 *                          int code);
 * void weft__machine_make(weft__machine_ctx *ctx, void *stack_lo,
 *                         size_t stack_size,
 *                         void (*fn)(void *arg, int code), void *arg);
 *
 * A suspended context is its stack pointer; below it on its own stack lie
 * what a call must preserve: x19-x28, the frame pointer x29, the link
 * register x30, the low halves d8-d15 of v8-v15, and the FPCR (its rounding
 * and flush modes are call-preserved). The switch saves them and resumes
 * *to, whose own weft__machine_switch call then returns `code` (in w0, and
 * in x1 for a fresh context's boot).
 *
 * Publication (see ctx-asm.h): to->sp is read, then cleared (a running
 * context has no saved stack pointer), and only then is from->sp stored with
 * a store-release (stlr), which orders every save before it and makes *from
 * resumable by another thread. After that store the switch touches neither
 * *from, nor its stack, nor *to.
 *
 * The switch returns with br, not ret, so that the return-address predictor
 * is not consulted for a return into the other context's call chain.
 *
 * A context made by weft__machine_make starts in weft__machine_boot, which
 * calls fn(arg, code); fn must never return.
 */
	.text

	.globl	weft__machine_switch
	.hidden	weft__machine_switch
	.type	weft__machine_switch, %function
	.p2align 4
weft__machine_switch:
	.cfi_startproc
	sub	sp, sp, #0xb0
	mrs	x10, fpcr
	str	x10, [sp, #0xa0]
	stp	d8, d9, [sp, #0x00]
	stp	d10, d11, [sp, #0x10]
	stp	d12, d13, [sp, #0x20]
	stp	d14, d15, [sp, #0x30]
	stp	x19, x20, [sp, #0x40]
	stp	x21, x22, [sp, #0x50]
	stp	x23, x24, [sp, #0x60]
	stp	x25, x26, [sp, #0x70]
	stp	x27, x28, [sp, #0x80]
	stp	x29, x30, [sp, #0x90]

	ldr	x12, [x1]
	str	xzr, [x1]
	mov	x9, sp
	stlr	x9, [x0]
	mov	sp, x12

	ldr	x11, [sp, #0xa0]
	cmp	x10, x11
	b.eq	1f
	msr	fpcr, x11	/* only when it differs: msr fpcr is slow */
1:	ldp	d8, d9, [sp, #0x00]
	ldp	d10, d11, [sp, #0x10]
	ldp	d12, d13, [sp, #0x20]
	ldp	d14, d15, [sp, #0x30]
	ldp	x19, x20, [sp, #0x40]
	ldp	x21, x22, [sp, #0x50]
	ldp	x23, x24, [sp, #0x60]
	ldp	x25, x26, [sp, #0x70]
	ldp	x27, x28, [sp, #0x80]
	ldp	x29, x30, [sp, #0x90]
	add	sp, sp, #0xb0
	mov	w0, w2
	mov	w1, w2
	br	x30
	.cfi_endproc
	.size	weft__machine_switch, .-weft__machine_switch

/*
 * The first frame is the switch's 0xb0-byte save area with x19 = fn,
 * x20 = arg, x29 = 0 (end of the frame chain), x30 = weft__machine_boot and
 * the maker's FPCR, placed 16 bytes below the aligned top, which stay zero
 * for unwinders.
 */
	.globl	weft__machine_make
	.hidden	weft__machine_make
	.type	weft__machine_make, %function
	.p2align 4
weft__machine_make:
	.cfi_startproc
	add	x1, x1, x2
	and	x1, x1, #~15
	sub	x9, x1, #0xc0
	stp	xzr, xzr, [x9, #0xb0]
	mrs	x10, fpcr
	str	x10, [x9, #0xa0]
	stp	x3, x4, [x9, #0x40]
	adr	x10, weft__machine_boot
	stp	xzr, x10, [x9, #0x90]
	str	x9, [x0]
	ret
	.cfi_endproc
	.size	weft__machine_make, .-weft__machine_make

	.type	weft__machine_boot, %function
	.p2align 4
weft__machine_boot:
	.cfi_startproc
	.cfi_undefined x30
	mov	x0, x20
	blr	x19
	brk	#0
	.cfi_endproc
	.size	weft__machine_boot, .-weft__machine_boot

	.section .note.GNU-stack, "", %progbits
