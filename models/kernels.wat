;; LM Playground's own WebAssembly SIMD kernels for training on TF.js's wasm backend (models/wasm-kernels.ts).
;; They run on TF.js's heap (the memory is imported), single-threaded, on tensors TF.js allocated. They do
;; what TF.js's wasm build does slowly or not at all for a Transformer's training step:
;;   gemm             batched products with strided operands: attention's q·kᵀ, p·v and their gradients
;;                    read their operands in place (no transposed copies; XNNPACK runs one batch entry a call)
;;   transpose        batched 2-D transposes of elements of any size: [..., r, c, e] → [..., c, r, e]
;;                    (4×4 SIMD shuffles for 4-byte elements, one memory.copy per element otherwise)
;;   sum_rows         the sum over leading rows (a bias's gradient): TF.js's Sum transposes first
;;   adamw            one AdamW step of a parameter in one pass (TF.js: ~15 kernels a parameter)
;;   layer_norm(_grad) LayerNorm forward and backward, one pass each (TF.js: ~10 and ~15 kernels)
;;   gelu_arg, gelu_grad GELU's polynomial argument and its whole gradient (TF.js: ~6 and ~12 kernels)
;; Pointers and strides are in bytes; sizes are in elements. Built by `npm run build:kernels` (wabt), which
;; writes models/kernels.wasm (shared memory, TF.js's threaded build) and models/kernels-unshared.wasm.
(module
  (import "env" "memory" (memory 1 65536 shared))

  ;; c[t, i, j] = alpha · Σ_p a[t, i, p] · b[t, p, j] for t < batch, i < m, j < n, p < k, where element
  ;; (t, i, p) of a lies at a + t·aBatch + i·aRow + p·aCol (likewise b with bRow, bCol; c with cRow and
  ;; a column stride of 4 bytes). Transposed operands are strides: aᵀ swaps aRow and aCol.
  ;; Two loops: when b's columns are adjacent (bCol = 4) each a element is broadcast against 16, then 4,
  ;; columns of b (axpy form); otherwise (b transposed: bRow = 4, a's rows contiguous: aCol = 4) each
  ;; output is a dot product over p, four outputs at a time.
  (func (export "gemm")
    (param $a i32) (param $b i32) (param $c i32) (param $batch i32) (param $m i32) (param $n i32) (param $k i32)
    (param $aBatch i32) (param $aRow i32) (param $aCol i32)
    (param $bBatch i32) (param $bRow i32) (param $bCol i32)
    (param $cBatch i32) (param $cRow i32) (param $alpha f32)
    (local $t i32) (local $i i32) (local $j i32) (local $p i32)
    (local $pa i32) (local $pb i32) (local $pc i32) (local $rowA i32) (local $rowC i32) (local $baseB i32)
    (local $s v128) (local $acc0 v128) (local $acc1 v128) (local $acc2 v128) (local $acc3 v128) (local $va v128)
    (local $alphaV v128) (local $sum f32) (local $k4 i32) (local $pb1 i32) (local $pb2 i32) (local $pb3 i32)
    (local.set $alphaV (f32x4.splat (local.get $alpha)))
    (local.set $k4 (i32.and (local.get $k) (i32.const -4)))
    (local.set $t (i32.const 0))
    (block $doneT (loop $eachT
      (br_if $doneT (i32.ge_u (local.get $t) (local.get $batch)))
      (local.set $baseB (i32.add (local.get $b) (i32.mul (local.get $t) (local.get $bBatch))))
      (local.set $i (i32.const 0))
      (block $doneI (loop $eachI
        (br_if $doneI (i32.ge_u (local.get $i) (local.get $m)))
        (local.set $rowA (i32.add (i32.add (local.get $a) (i32.mul (local.get $t) (local.get $aBatch))) (i32.mul (local.get $i) (local.get $aRow))))
        (local.set $rowC (i32.add (i32.add (local.get $c) (i32.mul (local.get $t) (local.get $cBatch))) (i32.mul (local.get $i) (local.get $cRow))))
        (local.set $j (i32.const 0))
        (if (i32.eq (local.get $bCol) (i32.const 4))
          (then
            ;; axpy form, 16 columns at a time
            (block $done16 (loop $each16
              (br_if $done16 (i32.gt_u (i32.add (local.get $j) (i32.const 16)) (local.get $n)))
              (local.set $acc0 (v128.const i32x4 0 0 0 0))
              (local.set $acc1 (v128.const i32x4 0 0 0 0))
              (local.set $acc2 (v128.const i32x4 0 0 0 0))
              (local.set $acc3 (v128.const i32x4 0 0 0 0))
              (local.set $pa (local.get $rowA))
              (local.set $pb (i32.add (local.get $baseB) (i32.shl (local.get $j) (i32.const 2))))
              (local.set $p (i32.const 0))
              (block $doneP (loop $eachP
                (br_if $doneP (i32.ge_u (local.get $p) (local.get $k)))
                (local.set $s (v128.load32_splat (local.get $pa)))
                (local.set $acc0 (f32x4.add (local.get $acc0) (f32x4.mul (local.get $s) (v128.load (local.get $pb)))))
                (local.set $acc1 (f32x4.add (local.get $acc1) (f32x4.mul (local.get $s) (v128.load offset=16 (local.get $pb)))))
                (local.set $acc2 (f32x4.add (local.get $acc2) (f32x4.mul (local.get $s) (v128.load offset=32 (local.get $pb)))))
                (local.set $acc3 (f32x4.add (local.get $acc3) (f32x4.mul (local.get $s) (v128.load offset=48 (local.get $pb)))))
                (local.set $pa (i32.add (local.get $pa) (local.get $aCol)))
                (local.set $pb (i32.add (local.get $pb) (local.get $bRow)))
                (local.set $p (i32.add (local.get $p) (i32.const 1)))
                (br $eachP)))
              (local.set $pc (i32.add (local.get $rowC) (i32.shl (local.get $j) (i32.const 2))))
              (v128.store (local.get $pc) (f32x4.mul (local.get $acc0) (local.get $alphaV)))
              (v128.store offset=16 (local.get $pc) (f32x4.mul (local.get $acc1) (local.get $alphaV)))
              (v128.store offset=32 (local.get $pc) (f32x4.mul (local.get $acc2) (local.get $alphaV)))
              (v128.store offset=48 (local.get $pc) (f32x4.mul (local.get $acc3) (local.get $alphaV)))
              (local.set $j (i32.add (local.get $j) (i32.const 16)))
              (br $each16)))
            ;; then 4 columns at a time
            (block $done4 (loop $each4
              (br_if $done4 (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $n)))
              (local.set $acc0 (v128.const i32x4 0 0 0 0))
              (local.set $pa (local.get $rowA))
              (local.set $pb (i32.add (local.get $baseB) (i32.shl (local.get $j) (i32.const 2))))
              (local.set $p (i32.const 0))
              (block $doneP (loop $eachP
                (br_if $doneP (i32.ge_u (local.get $p) (local.get $k)))
                (local.set $acc0 (f32x4.add (local.get $acc0) (f32x4.mul (v128.load32_splat (local.get $pa)) (v128.load (local.get $pb)))))
                (local.set $pa (i32.add (local.get $pa) (local.get $aCol)))
                (local.set $pb (i32.add (local.get $pb) (local.get $bRow)))
                (local.set $p (i32.add (local.get $p) (i32.const 1)))
                (br $eachP)))
              (v128.store (i32.add (local.get $rowC) (i32.shl (local.get $j) (i32.const 2))) (f32x4.mul (local.get $acc0) (local.get $alphaV)))
              (local.set $j (i32.add (local.get $j) (i32.const 4)))
              (br $each4))))
          (else
            ;; dot form, 4 outputs at a time: b's row j starts at baseB + j·bCol, its elements bRow apart
            (block $doneD4 (loop $eachD4
              (br_if $doneD4 (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $n)))
              (local.set $acc0 (v128.const i32x4 0 0 0 0))
              (local.set $acc1 (v128.const i32x4 0 0 0 0))
              (local.set $acc2 (v128.const i32x4 0 0 0 0))
              (local.set $acc3 (v128.const i32x4 0 0 0 0))
              (local.set $pb (i32.add (local.get $baseB) (i32.mul (local.get $j) (local.get $bCol))))
              (local.set $pb1 (i32.add (local.get $pb) (local.get $bCol)))
              (local.set $pb2 (i32.add (local.get $pb1) (local.get $bCol)))
              (local.set $pb3 (i32.add (local.get $pb2) (local.get $bCol)))
              (local.set $pa (local.get $rowA))
              (local.set $p (i32.const 0))
              (block $doneP (loop $eachP
                (br_if $doneP (i32.ge_u (local.get $p) (local.get $k4)))
                (local.set $va (v128.load (local.get $pa)))
                (local.set $acc0 (f32x4.add (local.get $acc0) (f32x4.mul (local.get $va) (v128.load (local.get $pb)))))
                (local.set $acc1 (f32x4.add (local.get $acc1) (f32x4.mul (local.get $va) (v128.load (local.get $pb1)))))
                (local.set $acc2 (f32x4.add (local.get $acc2) (f32x4.mul (local.get $va) (v128.load (local.get $pb2)))))
                (local.set $acc3 (f32x4.add (local.get $acc3) (f32x4.mul (local.get $va) (v128.load (local.get $pb3)))))
                (local.set $pa (i32.add (local.get $pa) (i32.const 16)))
                (local.set $pb (i32.add (local.get $pb) (i32.const 16)))
                (local.set $pb1 (i32.add (local.get $pb1) (i32.const 16)))
                (local.set $pb2 (i32.add (local.get $pb2) (i32.const 16)))
                (local.set $pb3 (i32.add (local.get $pb3) (i32.const 16)))
                (local.set $p (i32.add (local.get $p) (i32.const 4)))
                (br $eachP)))
              ;; the last k mod 4 terms, one at a time, into lane 0
              (block $doneTail (loop $eachTail
                (br_if $doneTail (i32.ge_u (local.get $p) (local.get $k)))
                (local.set $va (v128.load32_zero (local.get $pa)))
                (local.set $acc0 (f32x4.add (local.get $acc0) (f32x4.mul (local.get $va) (v128.load32_zero (local.get $pb)))))
                (local.set $acc1 (f32x4.add (local.get $acc1) (f32x4.mul (local.get $va) (v128.load32_zero (local.get $pb1)))))
                (local.set $acc2 (f32x4.add (local.get $acc2) (f32x4.mul (local.get $va) (v128.load32_zero (local.get $pb2)))))
                (local.set $acc3 (f32x4.add (local.get $acc3) (f32x4.mul (local.get $va) (v128.load32_zero (local.get $pb3)))))
                (local.set $pa (i32.add (local.get $pa) (i32.const 4)))
                (local.set $pb (i32.add (local.get $pb) (i32.const 4)))
                (local.set $pb1 (i32.add (local.get $pb1) (i32.const 4)))
                (local.set $pb2 (i32.add (local.get $pb2) (i32.const 4)))
                (local.set $pb3 (i32.add (local.get $pb3) (i32.const 4)))
                (local.set $p (i32.add (local.get $p) (i32.const 1)))
                (br $eachTail)))
              ;; horizontal sums of acc0..acc3 = a, b, c, d: x = [a0+a2, b0+b2, a1+a3, b1+b3], y likewise of
              ;; c and d, then [Σa, Σb, Σc, Σd] = x and y's lanes (0, 1) paired with their lanes (2, 3)
              (local.set $va (f32x4.add
                (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $acc0) (local.get $acc1))
                (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $acc0) (local.get $acc1))))
              (local.set $s (f32x4.add
                (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $acc2) (local.get $acc3))
                (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $acc2) (local.get $acc3))))
              (local.set $s (f32x4.add
                (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $va) (local.get $s))
                (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $va) (local.get $s))))
              (v128.store (i32.add (local.get $rowC) (i32.shl (local.get $j) (i32.const 2))) (f32x4.mul (local.get $s) (local.get $alphaV)))
              (local.set $j (i32.add (local.get $j) (i32.const 4)))
              (br $eachD4)))))
        ;; the last n mod 4 columns, in either form: one scalar sum each
        (block $doneJ (loop $eachJ
          (br_if $doneJ (i32.ge_u (local.get $j) (local.get $n)))
          (local.set $sum (f32.const 0))
          (local.set $pa (local.get $rowA))
          (local.set $pb (i32.add (local.get $baseB) (i32.mul (local.get $j) (local.get $bCol))))
          (local.set $p (i32.const 0))
          (block $doneP (loop $eachP
            (br_if $doneP (i32.ge_u (local.get $p) (local.get $k)))
            (local.set $sum (f32.add (local.get $sum) (f32.mul (f32.load (local.get $pa)) (f32.load (local.get $pb)))))
            (local.set $pa (i32.add (local.get $pa) (local.get $aCol)))
            (local.set $pb (i32.add (local.get $pb) (local.get $bRow)))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (br $eachP)))
          (f32.store (i32.add (local.get $rowC) (i32.shl (local.get $j) (i32.const 2))) (f32.mul (local.get $sum) (local.get $alpha)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $eachJ)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $eachI)))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (br $eachT))))

  ;; y[t, j, i] = x[t, i, j] for t < batch, i < rows, j < cols, each element `size` bytes. 4-byte elements go
  ;; in 4×4 blocks (four row loads, eight shuffles, four column stores); other sizes one memory.copy each.
  (func (export "transpose")
    (param $x i32) (param $y i32) (param $batch i32) (param $rows i32) (param $cols i32) (param $size i32)
    (local $t i32) (local $i i32) (local $j i32) (local $px i32) (local $py i32) (local $rowX i32) (local $colY i32)
    (local $r0 v128) (local $r1 v128) (local $r2 v128) (local $r3 v128) (local $u v128) (local $v v128)
    (local $w v128) (local $z v128) (local $stepX i32) (local $stepY i32)
    (local.set $stepX (i32.mul (local.get $cols) (local.get $size))) ;; one row of x
    (local.set $stepY (i32.mul (local.get $rows) (local.get $size))) ;; one row of y
    (local.set $t (i32.const 0))
    (block $doneT (loop $eachT
      (br_if $doneT (i32.ge_u (local.get $t) (local.get $batch)))
      (local.set $i (i32.const 0))
      (if (i32.eq (local.get $size) (i32.const 4))
        (then
          (block $doneI4 (loop $eachI4
            (br_if $doneI4 (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $rows)))
            (local.set $j (i32.const 0))
            (block $doneJ4 (loop $eachJ4
              (br_if $doneJ4 (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $cols)))
              (local.set $px (i32.add (local.get $x) (i32.add (i32.mul (local.get $i) (local.get $stepX)) (i32.shl (local.get $j) (i32.const 2)))))
              (local.set $r0 (v128.load (local.get $px)))
              (local.set $r1 (v128.load (i32.add (local.get $px) (local.get $stepX))))
              (local.set $r2 (v128.load (i32.add (local.get $px) (i32.shl (local.get $stepX) (i32.const 1)))))
              (local.set $r3 (v128.load (i32.add (local.get $px) (i32.mul (local.get $stepX) (i32.const 3)))))
              ;; u = [a0 b0 a1 b1], v = [a2 b2 a3 b3], w = [c0 d0 c1 d1], z = [c2 d2 c3 d3]
              (local.set $u (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $r0) (local.get $r1)))
              (local.set $v (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $r0) (local.get $r1)))
              (local.set $w (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $r2) (local.get $r3)))
              (local.set $z (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $r2) (local.get $r3)))
              (local.set $py (i32.add (local.get $y) (i32.add (i32.mul (local.get $j) (local.get $stepY)) (i32.shl (local.get $i) (i32.const 2)))))
              (v128.store (local.get $py) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $u) (local.get $w)))
              (v128.store (i32.add (local.get $py) (local.get $stepY)) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $u) (local.get $w)))
              (v128.store (i32.add (local.get $py) (i32.shl (local.get $stepY) (i32.const 1))) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $v) (local.get $z)))
              (v128.store (i32.add (local.get $py) (i32.mul (local.get $stepY) (i32.const 3))) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $v) (local.get $z)))
              (local.set $j (i32.add (local.get $j) (i32.const 4)))
              (br $eachJ4)))
            ;; the last cols mod 4 columns of these four rows
            (block $doneJ1 (loop $eachJ1
              (br_if $doneJ1 (i32.ge_u (local.get $j) (local.get $cols)))
              (local.set $px (i32.add (local.get $x) (i32.add (i32.mul (local.get $i) (local.get $stepX)) (i32.shl (local.get $j) (i32.const 2)))))
              (local.set $py (i32.add (local.get $y) (i32.add (i32.mul (local.get $j) (local.get $stepY)) (i32.shl (local.get $i) (i32.const 2)))))
              (f32.store (local.get $py) (f32.load (local.get $px)))
              (f32.store offset=4 (local.get $py) (f32.load (i32.add (local.get $px) (local.get $stepX))))
              (f32.store offset=8 (local.get $py) (f32.load (i32.add (local.get $px) (i32.shl (local.get $stepX) (i32.const 1)))))
              (f32.store offset=12 (local.get $py) (f32.load (i32.add (local.get $px) (i32.mul (local.get $stepX) (i32.const 3)))))
              (local.set $j (i32.add (local.get $j) (i32.const 1)))
              (br $eachJ1)))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $eachI4)))))
      ;; the rows left (all of them for other sizes): one element at a time
      (block $doneI (loop $eachI
        (br_if $doneI (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $px (i32.add (local.get $x) (i32.mul (local.get $i) (local.get $stepX))))
        (local.set $py (i32.add (local.get $y) (i32.mul (local.get $i) (local.get $size))))
        (local.set $j (i32.const 0))
        (block $doneJ (loop $eachJ
          (br_if $doneJ (i32.ge_u (local.get $j) (local.get $cols)))
          (memory.copy (local.get $py) (local.get $px) (local.get $size))
          (local.set $px (i32.add (local.get $px) (local.get $size)))
          (local.set $py (i32.add (local.get $py) (local.get $stepY)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $eachJ)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $eachI)))
      (local.set $x (i32.add (local.get $x) (i32.mul (local.get $rows) (local.get $stepX))))
      (local.set $y (i32.add (local.get $y) (i32.mul (local.get $rows) (local.get $stepX))))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (br $eachT))))

  ;; y[j] = Σ_i x[i, j] for i < rows, j < cols (float32): 16, then 4, then 1 column at a time.
  (func (export "sum_rows") (param $x i32) (param $y i32) (param $rows i32) (param $cols i32)
    (local $i i32) (local $j i32) (local $px i32) (local $step i32) (local $sum f32)
    (local $acc0 v128) (local $acc1 v128) (local $acc2 v128) (local $acc3 v128)
    (local.set $step (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $j (i32.const 0))
    (block $done16 (loop $each16
      (br_if $done16 (i32.gt_u (i32.add (local.get $j) (i32.const 16)) (local.get $cols)))
      (local.set $acc0 (v128.const i32x4 0 0 0 0))
      (local.set $acc1 (v128.const i32x4 0 0 0 0))
      (local.set $acc2 (v128.const i32x4 0 0 0 0))
      (local.set $acc3 (v128.const i32x4 0 0 0 0))
      (local.set $px (i32.add (local.get $x) (i32.shl (local.get $j) (i32.const 2))))
      (local.set $i (i32.const 0))
      (block $doneI (loop $eachI
        (br_if $doneI (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $acc0 (f32x4.add (local.get $acc0) (v128.load (local.get $px))))
        (local.set $acc1 (f32x4.add (local.get $acc1) (v128.load offset=16 (local.get $px))))
        (local.set $acc2 (f32x4.add (local.get $acc2) (v128.load offset=32 (local.get $px))))
        (local.set $acc3 (f32x4.add (local.get $acc3) (v128.load offset=48 (local.get $px))))
        (local.set $px (i32.add (local.get $px) (local.get $step)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $eachI)))
      (local.set $px (i32.add (local.get $y) (i32.shl (local.get $j) (i32.const 2))))
      (v128.store (local.get $px) (local.get $acc0))
      (v128.store offset=16 (local.get $px) (local.get $acc1))
      (v128.store offset=32 (local.get $px) (local.get $acc2))
      (v128.store offset=48 (local.get $px) (local.get $acc3))
      (local.set $j (i32.add (local.get $j) (i32.const 16)))
      (br $each16)))
    (block $done4 (loop $each4
      (br_if $done4 (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $cols)))
      (local.set $acc0 (v128.const i32x4 0 0 0 0))
      (local.set $px (i32.add (local.get $x) (i32.shl (local.get $j) (i32.const 2))))
      (local.set $i (i32.const 0))
      (block $doneI (loop $eachI
        (br_if $doneI (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $acc0 (f32x4.add (local.get $acc0) (v128.load (local.get $px))))
        (local.set $px (i32.add (local.get $px) (local.get $step)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $eachI)))
      (v128.store (i32.add (local.get $y) (i32.shl (local.get $j) (i32.const 2))) (local.get $acc0))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))
      (br $each4)))
    (block $done1 (loop $each1
      (br_if $done1 (i32.ge_u (local.get $j) (local.get $cols)))
      (local.set $sum (f32.const 0))
      (local.set $px (i32.add (local.get $x) (i32.shl (local.get $j) (i32.const 2))))
      (local.set $i (i32.const 0))
      (block $doneI (loop $eachI
        (br_if $doneI (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $sum (f32.add (local.get $sum) (f32.load (local.get $px))))
        (local.set $px (i32.add (local.get $px) (local.get $step)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $eachI)))
      (f32.store (i32.add (local.get $y) (i32.shl (local.get $j) (i32.const 2))) (local.get $sum))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $each1)))
  )

  ;; One AdamW step of one parameter, n float32 elements, in TF.js's order of operations (models/train.ts's
  ;; reference, each operation rounded to float32 alike, so the results are the same bits):
  ;;   g' = g·clip   m' = β1·m + (1−β1)·g'   v' = β2·v + (1−β2)·g'²
  ;;   p' = p·decay − lr · (m'/bc1) / (√(v'/bc2) + ε)
  ;; `clip` points to the float32 clip factor (a scalar tensor TF.js computed); bc1, bc2 are the bias corrections.
  (func (export "adamw")
    (param $p i32) (param $g i32) (param $m i32) (param $v i32) (param $pOut i32) (param $mOut i32) (param $vOut i32)
    (param $n i32) (param $clip i32) (param $beta1 f32) (param $oneMinusBeta1 f32) (param $beta2 f32) (param $oneMinusBeta2 f32)
    (param $bc1 f32) (param $bc2 f32) (param $eps f32) (param $lr f32) (param $decay f32)
    (local $i i32) (local $at i32) (local $n4 i32) (local $gv v128) (local $mv v128) (local $vv v128) (local $s f32)
    (local $gs f32) (local $ms f32) (local $vs f32)
    (local.set $s (f32.load (local.get $clip)))
    (local.set $n4 (i32.and (local.get $n) (i32.const -4)))
    (block $done4 (loop $each4
      (br_if $done4 (i32.ge_u (local.get $i) (local.get $n4)))
      (local.set $at (i32.shl (local.get $i) (i32.const 2)))
      (local.set $gv (f32x4.mul (v128.load (i32.add (local.get $g) (local.get $at))) (f32x4.splat (local.get $s))))
      (local.set $mv (f32x4.add
        (f32x4.mul (v128.load (i32.add (local.get $m) (local.get $at))) (f32x4.splat (local.get $beta1)))
        (f32x4.mul (local.get $gv) (f32x4.splat (local.get $oneMinusBeta1)))))
      (local.set $vv (f32x4.add
        (f32x4.mul (v128.load (i32.add (local.get $v) (local.get $at))) (f32x4.splat (local.get $beta2)))
        (f32x4.mul (f32x4.mul (local.get $gv) (local.get $gv)) (f32x4.splat (local.get $oneMinusBeta2)))))
      (v128.store (i32.add (local.get $mOut) (local.get $at)) (local.get $mv))
      (v128.store (i32.add (local.get $vOut) (local.get $at)) (local.get $vv))
      (v128.store (i32.add (local.get $pOut) (local.get $at)) (f32x4.sub
        (f32x4.mul (v128.load (i32.add (local.get $p) (local.get $at))) (f32x4.splat (local.get $decay)))
        (f32x4.mul
          (f32x4.div
            (f32x4.div (local.get $mv) (f32x4.splat (local.get $bc1)))
            (f32x4.add (f32x4.sqrt (f32x4.div (local.get $vv) (f32x4.splat (local.get $bc2)))) (f32x4.splat (local.get $eps))))
          (f32x4.splat (local.get $lr)))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $each4)))
    (block $done1 (loop $each1
      (br_if $done1 (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $at (i32.shl (local.get $i) (i32.const 2)))
      (local.set $gs (f32.mul (f32.load (i32.add (local.get $g) (local.get $at))) (local.get $s)))
      (local.set $ms (f32.add (f32.mul (f32.load (i32.add (local.get $m) (local.get $at))) (local.get $beta1)) (f32.mul (local.get $gs) (local.get $oneMinusBeta1))))
      (local.set $vs (f32.add (f32.mul (f32.load (i32.add (local.get $v) (local.get $at))) (local.get $beta2))
        (f32.mul (f32.mul (local.get $gs) (local.get $gs)) (local.get $oneMinusBeta2))))
      (f32.store (i32.add (local.get $mOut) (local.get $at)) (local.get $ms))
      (f32.store (i32.add (local.get $vOut) (local.get $at)) (local.get $vs))
      (f32.store (i32.add (local.get $pOut) (local.get $at)) (f32.sub
        (f32.mul (f32.load (i32.add (local.get $p) (local.get $at))) (local.get $decay))
        (f32.mul
          (f32.div (f32.div (local.get $ms) (local.get $bc1)) (f32.add (f32.sqrt (f32.div (local.get $vs) (local.get $bc2))) (local.get $eps)))
          (local.get $lr))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $each1)))
  )

  ;; LayerNorm over the last axis of x [rows, cols]: y = (x − mean) / √(var + eps) · gain + bias, with mean and
  ;; var (biased) of each row, as TF.js's tf.moments computes them (two passes). Also writes each row's mean
  ;; and rstd = 1 / √(var + eps) for the gradient.
  (func (export "layer_norm")
    (param $x i32) (param $gain i32) (param $bias i32) (param $y i32) (param $mean i32) (param $rstd i32)
    (param $rows i32) (param $cols i32) (param $eps f32)
    (local $i i32) (local $j i32) (local $px i32) (local $py i32) (local $cols4 i32) (local $acc v128) (local $d v128)
    (local $sum f32) (local $mu f32) (local $std f32) (local $e f32)
    (local.set $cols4 (i32.and (local.get $cols) (i32.const -4)))
    (block $doneI (loop $eachI
      (br_if $doneI (i32.ge_u (local.get $i) (local.get $rows)))
      (local.set $px (i32.add (local.get $x) (i32.shl (i32.mul (local.get $i) (local.get $cols)) (i32.const 2))))
      (local.set $py (i32.add (local.get $y) (i32.shl (i32.mul (local.get $i) (local.get $cols)) (i32.const 2))))
      ;; mean
      (local.set $acc (v128.const i32x4 0 0 0 0))
      (local.set $sum (f32.const 0))
      (local.set $j (i32.const 0))
      (block $done (loop $each
        (br_if $done (i32.ge_u (local.get $j) (local.get $cols4)))
        (local.set $acc (f32x4.add (local.get $acc) (v128.load (i32.add (local.get $px) (i32.shl (local.get $j) (i32.const 2))))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $each)))
      (block $done (loop $each
        (br_if $done (i32.ge_u (local.get $j) (local.get $cols)))
        (local.set $sum (f32.add (local.get $sum) (f32.load (i32.add (local.get $px) (i32.shl (local.get $j) (i32.const 2))))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $each)))
      (local.set $mu (f32.div
        (f32.add (local.get $sum) (f32.add
          (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
          (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))
        (f32.convert_i32_u (local.get $cols))))
      ;; variance: the mean of (x − mean)²
      (local.set $acc (v128.const i32x4 0 0 0 0))
      (local.set $sum (f32.const 0))
      (local.set $j (i32.const 0))
      (block $done (loop $each
        (br_if $done (i32.ge_u (local.get $j) (local.get $cols4)))
        (local.set $d (f32x4.sub (v128.load (i32.add (local.get $px) (i32.shl (local.get $j) (i32.const 2)))) (f32x4.splat (local.get $mu))))
        (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $d) (local.get $d))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $each)))
      (block $done (loop $each
        (br_if $done (i32.ge_u (local.get $j) (local.get $cols)))
        (local.set $e (f32.sub (f32.load (i32.add (local.get $px) (i32.shl (local.get $j) (i32.const 2)))) (local.get $mu)))
        (local.set $sum (f32.add (local.get $sum) (f32.mul (local.get $e) (local.get $e))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $each)))
      (local.set $std (f32.sqrt (f32.add (local.get $eps) (f32.div
        (f32.add (local.get $sum) (f32.add
          (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
          (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))
        (f32.convert_i32_u (local.get $cols))))))
      (f32.store (i32.add (local.get $mean) (i32.shl (local.get $i) (i32.const 2))) (local.get $mu))
      (f32.store (i32.add (local.get $rstd) (i32.shl (local.get $i) (i32.const 2))) (f32.div (f32.const 1) (local.get $std)))
      ;; y
      (local.set $j (i32.const 0))
      (block $done (loop $each
        (br_if $done (i32.ge_u (local.get $j) (local.get $cols4)))
        (v128.store (i32.add (local.get $py) (i32.shl (local.get $j) (i32.const 2))) (f32x4.add
          (f32x4.mul
            (f32x4.div (f32x4.sub (v128.load (i32.add (local.get $px) (i32.shl (local.get $j) (i32.const 2)))) (f32x4.splat (local.get $mu))) (f32x4.splat (local.get $std)))
            (v128.load (i32.add (local.get $gain) (i32.shl (local.get $j) (i32.const 2)))))
          (v128.load (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2))))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $each)))
      (block $done (loop $each
        (br_if $done (i32.ge_u (local.get $j) (local.get $cols)))
        (f32.store (i32.add (local.get $py) (i32.shl (local.get $j) (i32.const 2))) (f32.add
          (f32.mul
            (f32.div (f32.sub (f32.load (i32.add (local.get $px) (i32.shl (local.get $j) (i32.const 2)))) (local.get $mu)) (local.get $std))
            (f32.load (i32.add (local.get $gain) (i32.shl (local.get $j) (i32.const 2)))))
          (f32.load (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2))))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $each)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $eachI)))
  )

  ;; LayerNorm's gradient, from x [rows, cols], gain [cols], each row's mean and rstd (layer_norm's) and dy:
  ;;   x̂ = (x − mean)·rstd,  g = dy·gain,  dx = rstd·(g − mean_j(g) − x̂·mean_j(g·x̂)),
  ;;   dgain = Σ_rows dy·x̂,  dbias = Σ_rows dy.
  (func (export "layer_norm_grad")
    (param $x i32) (param $gain i32) (param $mean i32) (param $rstd i32) (param $dy i32)
    (param $dx i32) (param $dgain i32) (param $dbias i32) (param $rows i32) (param $cols i32)
    (local $i i32) (local $j i32) (local $at i32) (local $row i32) (local $cols4 i32)
    (local $mu v128) (local $r v128) (local $xh v128) (local $g v128) (local $dyv v128) (local $accG v128) (local $accGX v128)
    (local $mg f32) (local $mgx f32) (local $sg f32) (local $sgx f32) (local $xs f32) (local $gs f32) (local $dys f32) (local $rs f32) (local $mus f32)
    (local.set $cols4 (i32.and (local.get $cols) (i32.const -4)))
    (memory.fill (local.get $dgain) (i32.const 0) (i32.shl (local.get $cols) (i32.const 2)))
    (memory.fill (local.get $dbias) (i32.const 0) (i32.shl (local.get $cols) (i32.const 2)))
    (block $doneI (loop $eachI
      (br_if $doneI (i32.ge_u (local.get $i) (local.get $rows)))
      (local.set $row (i32.shl (i32.mul (local.get $i) (local.get $cols)) (i32.const 2)))
      (local.set $mus (f32.load (i32.add (local.get $mean) (i32.shl (local.get $i) (i32.const 2)))))
      (local.set $rs (f32.load (i32.add (local.get $rstd) (i32.shl (local.get $i) (i32.const 2)))))
      (local.set $mu (f32x4.splat (local.get $mus)))
      (local.set $r (f32x4.splat (local.get $rs)))
      ;; pass 1: Σ g and Σ g·x̂ over the row
      (local.set $accG (v128.const i32x4 0 0 0 0))
      (local.set $accGX (v128.const i32x4 0 0 0 0))
      (local.set $sg (f32.const 0))
      (local.set $sgx (f32.const 0))
      (local.set $j (i32.const 0))
      (block $done (loop $each
        (br_if $done (i32.ge_u (local.get $j) (local.get $cols4)))
        (local.set $at (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $xh (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $at))) (local.get $mu)) (local.get $r)))
        (local.set $g (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $at))) (v128.load (i32.add (local.get $gain) (i32.shl (local.get $j) (i32.const 2))))))
        (local.set $accG (f32x4.add (local.get $accG) (local.get $g)))
        (local.set $accGX (f32x4.add (local.get $accGX) (f32x4.mul (local.get $g) (local.get $xh))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $each)))
      (block $done (loop $each
        (br_if $done (i32.ge_u (local.get $j) (local.get $cols)))
        (local.set $at (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $xs (f32.mul (f32.sub (f32.load (i32.add (local.get $x) (local.get $at))) (local.get $mus)) (local.get $rs)))
        (local.set $gs (f32.mul (f32.load (i32.add (local.get $dy) (local.get $at))) (f32.load (i32.add (local.get $gain) (i32.shl (local.get $j) (i32.const 2))))))
        (local.set $sg (f32.add (local.get $sg) (local.get $gs)))
        (local.set $sgx (f32.add (local.get $sgx) (f32.mul (local.get $gs) (local.get $xs))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $each)))
      (local.set $mg (f32.div (f32.add (local.get $sg) (f32.add
          (f32.add (f32x4.extract_lane 0 (local.get $accG)) (f32x4.extract_lane 1 (local.get $accG)))
          (f32.add (f32x4.extract_lane 2 (local.get $accG)) (f32x4.extract_lane 3 (local.get $accG)))))
        (f32.convert_i32_u (local.get $cols))))
      (local.set $mgx (f32.div (f32.add (local.get $sgx) (f32.add
          (f32.add (f32x4.extract_lane 0 (local.get $accGX)) (f32x4.extract_lane 1 (local.get $accGX)))
          (f32.add (f32x4.extract_lane 2 (local.get $accGX)) (f32x4.extract_lane 3 (local.get $accGX)))))
        (f32.convert_i32_u (local.get $cols))))
      ;; pass 2: dx, and the row's share of dgain and dbias
      (local.set $j (i32.const 0))
      (block $done (loop $each
        (br_if $done (i32.ge_u (local.get $j) (local.get $cols4)))
        (local.set $at (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $xh (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $at))) (local.get $mu)) (local.get $r)))
        (local.set $dyv (v128.load (i32.add (local.get $dy) (local.get $at))))
        (local.set $g (f32x4.mul (local.get $dyv) (v128.load (i32.add (local.get $gain) (i32.shl (local.get $j) (i32.const 2))))))
        (v128.store (i32.add (local.get $dx) (local.get $at)) (f32x4.mul (local.get $r)
          (f32x4.sub (f32x4.sub (local.get $g) (f32x4.splat (local.get $mg))) (f32x4.mul (local.get $xh) (f32x4.splat (local.get $mgx))))))
        (local.set $at (i32.shl (local.get $j) (i32.const 2)))
        (v128.store (i32.add (local.get $dgain) (local.get $at)) (f32x4.add (v128.load (i32.add (local.get $dgain) (local.get $at))) (f32x4.mul (local.get $dyv) (local.get $xh))))
        (v128.store (i32.add (local.get $dbias) (local.get $at)) (f32x4.add (v128.load (i32.add (local.get $dbias) (local.get $at))) (local.get $dyv)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $each)))
      (block $done (loop $each
        (br_if $done (i32.ge_u (local.get $j) (local.get $cols)))
        (local.set $at (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $xs (f32.mul (f32.sub (f32.load (i32.add (local.get $x) (local.get $at))) (local.get $mus)) (local.get $rs)))
        (local.set $dys (f32.load (i32.add (local.get $dy) (local.get $at))))
        (local.set $gs (f32.mul (local.get $dys) (f32.load (i32.add (local.get $gain) (i32.shl (local.get $j) (i32.const 2))))))
        (f32.store (i32.add (local.get $dx) (local.get $at)) (f32.mul (local.get $rs)
          (f32.sub (f32.sub (local.get $gs) (local.get $mg)) (f32.mul (local.get $xs) (local.get $mgx)))))
        (local.set $at (i32.shl (local.get $j) (i32.const 2)))
        (f32.store (i32.add (local.get $dgain) (local.get $at)) (f32.add (f32.load (i32.add (local.get $dgain) (local.get $at))) (f32.mul (local.get $dys) (local.get $xs))))
        (f32.store (i32.add (local.get $dbias) (local.get $at)) (f32.add (f32.load (i32.add (local.get $dbias) (local.get $at))) (local.get $dys)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $each)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $eachI)))
  )

  ;; GELU's tanh approximation as x·σ(z) with z = k1·(x + k2·x³), k1 = 2√(2/π), k2 = 0.044715 (models/tf-ops.ts):
  ;; gelu_arg writes z (in the reference's order of operations: the same bits), TF.js's Sigmoid makes s = σ(z),
  ;; gelu_grad writes dx = dy·(s + x·s·(1 − s)·k1·(1 + 3·k2·x²)).
  (func (export "gelu_arg") (param $x i32) (param $z i32) (param $n i32) (param $k1 f32) (param $k2 f32)
    (local $i i32) (local $at i32) (local $v v128) (local $s f32)
    (block $done (loop $each
      (br_if $done (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $n)))
      (local.set $at (i32.shl (local.get $i) (i32.const 2)))
      (local.set $v (v128.load (i32.add (local.get $x) (local.get $at))))
      (v128.store (i32.add (local.get $z) (local.get $at)) (f32x4.mul (f32x4.splat (local.get $k1))
        (f32x4.add (local.get $v) (f32x4.mul (f32x4.splat (local.get $k2)) (f32x4.mul (f32x4.mul (local.get $v) (local.get $v)) (local.get $v))))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $each)))
    (block $done (loop $each
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $at (i32.shl (local.get $i) (i32.const 2)))
      (local.set $s (f32.load (i32.add (local.get $x) (local.get $at))))
      (f32.store (i32.add (local.get $z) (local.get $at)) (f32.mul (local.get $k1)
        (f32.add (local.get $s) (f32.mul (local.get $k2) (f32.mul (f32.mul (local.get $s) (local.get $s)) (local.get $s))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $each)))
  )

  (func (export "gelu_grad") (param $x i32) (param $sig i32) (param $dy i32) (param $dx i32) (param $n i32) (param $k1 f32) (param $k2 f32)
    (local $i i32) (local $at i32) (local $v v128) (local $s v128) (local $xs f32) (local $ss f32)
    (block $done (loop $each
      (br_if $done (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $n)))
      (local.set $at (i32.shl (local.get $i) (i32.const 2)))
      (local.set $v (v128.load (i32.add (local.get $x) (local.get $at))))
      (local.set $s (v128.load (i32.add (local.get $sig) (local.get $at))))
      (v128.store (i32.add (local.get $dx) (local.get $at)) (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $at)))
        (f32x4.add (local.get $s) (f32x4.mul
          (f32x4.mul (local.get $v) (f32x4.mul (local.get $s) (f32x4.sub (f32x4.splat (f32.const 1)) (local.get $s))))
          (f32x4.mul (f32x4.splat (local.get $k1))
            (f32x4.add (f32x4.splat (f32.const 1)) (f32x4.mul (f32x4.splat (f32.mul (f32.const 3) (local.get $k2))) (f32x4.mul (local.get $v) (local.get $v)))))))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $each)))
    (block $done (loop $each
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $at (i32.shl (local.get $i) (i32.const 2)))
      (local.set $xs (f32.load (i32.add (local.get $x) (local.get $at))))
      (local.set $ss (f32.load (i32.add (local.get $sig) (local.get $at))))
      (f32.store (i32.add (local.get $dx) (local.get $at)) (f32.mul (f32.load (i32.add (local.get $dy) (local.get $at)))
        (f32.add (local.get $ss) (f32.mul
          (f32.mul (local.get $xs) (f32.mul (local.get $ss) (f32.sub (f32.const 1) (local.get $ss))))
          (f32.mul (local.get $k1) (f32.add (f32.const 1) (f32.mul (f32.mul (f32.const 3) (local.get $k2)) (f32.mul (local.get $xs) (local.get $xs)))))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $each)))
  )
)
