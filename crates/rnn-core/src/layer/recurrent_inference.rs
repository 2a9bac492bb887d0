//! The cache-free inference half of [`RecurrentStack`]: [`forward_inference`] (a chunk or one
//! step from a carried state, updated in place), its token-row variant
//! [`forward_inference_tokens`] (the first layer's input projection looked up per token), the
//! packed recurrent weights ([`PackedRecurrence`]) and the reusable buffers
//! ([`InferenceWorkspace`]). Nothing here keeps a cache for a backward pass; training (forward
//! with cache, backward) is in [`super::recurrent`].
//!
//! [`forward_inference`]: RecurrentStack::forward_inference
//! [`forward_inference_tokens`]: RecurrentStack::forward_inference_tokens

use super::recurrent::{place_direction, reverse_real_steps, RecurrentStack, SeqBatch, StackInput, StackState};
use crate::cell::{self, CarriedState, CellInput, CellSequence, CellWorkspace, PackedCellWeights, SeqDims};
use crate::error::{check_len, Error, Result};
use crate::kernels::precision::Precision;
use crate::params::Params;

/// The weights of every (layer, direction), in `h_n` order, packed for the inference path. Pack
/// once per set of weights ([`RecurrentStack::pack_recurrence`]) and reuse for every step.
#[derive(Debug, Clone, Default)]
pub struct PackedRecurrence {
    pub(super) cells: Vec<PackedCellWeights>,
}

impl PackedRecurrence {
    /// Bytes of packed weights.
    pub fn bytes(&self) -> usize {
        self.cells.iter().map(PackedCellWeights::bytes).sum()
    }
}

/// Token ids as a stack's input at inference: step t of row b is row `ids[t·B + b]`
/// (time-major, `[T·B]`, T = `steps`, B = `batch`) of `table` `[V, G·H]`, the first layer's
/// input projection of each of the V tokens.
#[derive(Debug, Clone, Copy)]
pub struct TokenBatch<'a> {
    pub table: &'a [f32],
    pub ids: &'a [u32],
    pub steps: usize,
    pub batch: usize,
}

/// Reusable buffers of the cache-free inference path.
#[derive(Debug, Clone, Default)]
pub struct InferenceWorkspace {
    /// The packing used when the caller passes none.
    packed: PackedRecurrence,
    cells: CellWorkspace,
    lengths: Vec<usize>,
    /// `[T, B, in]` the current layer's input; after the last layer, the stack's output.
    layer_in: Vec<f32>,
    /// `[T, B, D·H]` the current layer's output.
    layer_out: Vec<f32>,
    /// `[T, B, in]` the reverse direction's input, each row's real steps reversed.
    x_reversed: Vec<f32>,
    /// `[T, B, H]` one direction's output in its own time order.
    y_dir: Vec<f32>,
}

impl RecurrentStack {
    /// Cache-free forward for inference and generation: runs `seq` (one step or a chunk) from
    /// `state`, updates `state` in place to the final state, and returns `y` `[T, B, D·H]`
    /// borrowed from the workspace. No dropout. Equal to [`forward`](Self::forward) without
    /// dropout; calling it chunk after chunk with the same state equals one call over the
    /// concatenation (unidirectional stacks; a reverse direction sees each chunk alone).
    pub fn forward_inference<'w>(
        &self,
        p: &Params,
        packed: Option<&PackedRecurrence>,
        seq: SeqBatch,
        state: &mut StackState,
        ws: &'w mut InferenceWorkspace,
    ) -> Result<&'w [f32]> {
        self.run_inference(p, packed, seq.into(), state, ws)
    }

    /// [`forward_inference`](Self::forward_inference) with the first layer's input projection
    /// looked up per token in `tokens.table`, made by
    /// [`project_first_layer`](Self::project_first_layer) from the V embeddings (a token model
    /// then skips multiplying by `W_ih` at every token). Same results, bit for bit.
    /// Unidirectional stacks only.
    pub fn forward_inference_tokens<'w>(
        &self,
        p: &Params,
        packed: &PackedRecurrence,
        tokens: TokenBatch,
        state: &mut StackState,
        ws: &'w mut InferenceWorkspace,
    ) -> Result<&'w [f32]> {
        let TokenBatch { table, ids, steps, batch } = tokens;
        let input = StackInput { x: CellInput::TokenRows { table, ids }, steps, batch, lengths: None };
        self.run_inference(p, Some(packed), input, state, ws)
    }

    /// `out [R, G·H]`: the first layer's input projection of `x [R, I]` (plus its biases), made
    /// as the inference path makes it, for the table of [`forward_inference_tokens`](Self::forward_inference_tokens).
    pub fn project_first_layer(
        &self,
        p: &Params,
        packed: &PackedRecurrence,
        x: &[f32],
        rows: usize,
    ) -> Result<Vec<f32>> {
        if self.directions != 1 || packed.cells.len() != self.layers {
            return Err(Error::Config(
                "project_first_layer: a unidirectional stack and its own packed weights are needed".into(),
            ));
        }
        check_len("x", x.len(), rows * self.input_size)?;
        let mut out = vec![0.0; rows * self.cell.gates() * self.hidden];
        let w = self.weights(p, 0, 0)?;
        cell::project_for_inference(self.cell, &w, &packed.cells[0], x, &mut out);
        Ok(out)
    }

    fn run_inference<'w>(
        &self,
        p: &Params,
        packed: Option<&PackedRecurrence>,
        stack_input: StackInput,
        state: &mut StackState,
        ws: &'w mut InferenceWorkspace,
    ) -> Result<&'w [f32]> {
        self.check_inputs(stack_input, Some(state))?;
        let StackInput { x: input, steps: t, batch: b, lengths } = stack_input;
        let packed = match packed {
            Some(packed) => {
                if packed.cells.len() != self.layers * self.directions {
                    return Err(Error::Config("forward_inference: the packed weights belong to another stack".into()));
                }
                packed
            }
            None => {
                self.repack_recurrence(p, &mut ws.packed, Precision::F32)?;
                &ws.packed
            }
        };
        let (hd, dirs, n_state) = (self.hidden, self.directions, b * self.hidden);
        ws.lengths.clear();
        match lengths {
            Some(l) => ws.lengths.extend_from_slice(l),
            None => ws.lengths.resize(b, t),
        }
        ws.layer_in.clear();
        if let CellInput::Vectors(x) = input {
            ws.layer_in.extend_from_slice(x);
        }
        ws.y_dir.resize(t * n_state, 0.0);
        for layer in 0..self.layers {
            let in_size = self.layer_input_size(layer);
            let dims = SeqDims { steps: t, batch: b, input: in_size, hidden: hd };
            ws.layer_out.resize(t * b * dirs * hd, 0.0);
            for dir in 0..dirs {
                let idx = layer * dirs + dir;
                let w = self.weights(p, layer, dir)?;
                let x_dir = match (layer, input) {
                    (0, CellInput::TokenRows { .. }) => input,
                    _ if dir == 0 => CellInput::Vectors(&ws.layer_in),
                    _ => {
                        ws.x_reversed.resize(ws.layer_in.len(), 0.0);
                        reverse_real_steps(&ws.layer_in, &mut ws.x_reversed, b, in_size, &ws.lengths);
                        CellInput::Vectors(&ws.x_reversed)
                    }
                };
                let state_range = idx * n_state..(idx + 1) * n_state;
                let carried = CarriedState {
                    h: &mut state.h[state_range.clone()],
                    c: state.c.as_mut().map(|c| &mut c[state_range]),
                };
                let seq_dir = CellSequence { dims, x: x_dir, lengths: &ws.lengths };
                cell::forward_inference(
                    self.cell,
                    &w,
                    &packed.cells[idx],
                    seq_dir,
                    carried,
                    &mut ws.y_dir,
                    &mut ws.cells,
                );
                place_direction(&ws.y_dir, &mut ws.layer_out, b, hd, dir, dirs, &ws.lengths);
            }
            std::mem::swap(&mut ws.layer_in, &mut ws.layer_out);
        }
        Ok(&ws.layer_in)
    }

    /// The weights of every (layer, direction) of `p` packed at `precision` for
    /// [`forward_inference`](Self::forward_inference).
    pub fn pack_recurrence(&self, p: &Params, precision: Precision) -> Result<PackedRecurrence> {
        let mut packed = PackedRecurrence::default();
        self.repack_recurrence(p, &mut packed, precision)?;
        Ok(packed)
    }

    fn repack_recurrence(&self, p: &Params, packed: &mut PackedRecurrence, precision: Precision) -> Result<()> {
        packed.cells.resize_with(self.layers * self.directions, PackedCellWeights::default);
        for layer in 0..self.layers {
            for dir in 0..self.directions {
                let w = self.weights(p, layer, dir)?;
                let input = self.layer_input_size(layer);
                packed.cells[layer * self.directions + dir].repack(&w, input, self.hidden, precision)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CellKind;
    use crate::layer::recurrent::tests::{assert_close, config, setup, CELLS};
    use crate::layer::recurrent::StackCache;
    use std::sync::Arc;

    #[test]
    fn inference_path_equals_training_forward() {
        for cell in CELLS {
            for bidirectional in [false, true] {
                let cfg = config(cell, 2, bidirectional, 0.0);
                let (t, b) = (5, 3);
                let (stack, p, x, state) = setup(&cfg, t, b, 7);
                let lengths = [5, 2, 0];
                let (y, fin) = stack
                    .forward(
                        &p,
                        SeqBatch { x: &x, steps: t, batch: b, lengths: Some(&lengths) },
                        Some(&state),
                        None,
                        &mut StackCache::default(),
                    )
                    .unwrap();
                let mut carried = state.clone();
                let mut ws = InferenceWorkspace::default();
                let packed = stack.pack_recurrence(&p, Precision::F32).unwrap();
                let y_inf = stack
                    .forward_inference(
                        &p,
                        Some(&packed),
                        SeqBatch { x: &x, steps: t, batch: b, lengths: Some(&lengths) },
                        &mut carried,
                        &mut ws,
                    )
                    .unwrap();
                // Same GEMM shapes and kernels in the same order: bit-identical.
                assert_eq!(y_inf, &y[..], "{cell:?} bidirectional={bidirectional}");
                assert_eq!(carried, fin);
            }
        }
    }

    #[test]
    fn step_by_step_with_carried_state_equals_the_sequence_forward() {
        for cell in CELLS {
            let cfg = config(cell, 2, false, 0.0);
            let (t, b) = (6, 2);
            let (stack, p, x, state) = setup(&cfg, t, b, 9);
            let (y, fin) = stack
                .forward(
                    &p,
                    SeqBatch { x: &x, steps: t, batch: b, lengths: None },
                    Some(&state),
                    None,
                    &mut StackCache::default(),
                )
                .unwrap();
            let (width_in, width_out) = (stack.input_size() * b, stack.output_size() * b);
            let mut carried = state.clone();
            let mut ws = InferenceWorkspace::default();
            for s in 0..t {
                let y_s = stack
                    .forward_inference(
                        &p,
                        None,
                        SeqBatch { x: &x[s * width_in..(s + 1) * width_in], steps: 1, batch: b, lengths: None },
                        &mut carried,
                        &mut ws,
                    )
                    .unwrap();
                // The input projection is one GEMM over all steps vs one per step: the same sums,
                // possibly in another order, hence a tolerance.
                assert_close(&format!("{cell:?} y[{s}]"), y_s, &y[s * width_out..(s + 1) * width_out], 1e-6);
            }
            assert_close("h_n", &carried.h, &fin.h, 1e-6);
            if let (Some(c1), Some(c2)) = (&carried.c, &fin.c) {
                assert_close("c_n", c1, c2, 1e-6);
            }
        }
    }

    /// Backward's buffers are reused from one call to the next (and across sizes): a backward
    /// through a cache that already ran a larger one gives the same bits as through a fresh cache.

    #[test]
    fn bad_inference_inputs_are_errors_not_panics() {
        let cfg = config(CellKind::Lstm, 2, true, 0.0);
        let (t, b) = (4, 2);
        let (stack, p, x, _) = setup(&cfg, t, b, 23);
        // Step with a wrong input width.
        let mut s = StackState::zeros(&stack, b);
        let mut ws = InferenceWorkspace::default();
        assert!(matches!(
            stack.forward_inference(
                &p,
                None,
                SeqBatch { x: &x[..5], steps: 1, batch: b, lengths: None },
                &mut s,
                &mut ws
            ),
            Err(Error::Shape(_))
        ));
        // Token rows: a bidirectional stack, a table of the wrong width, an id past the table,
        // the wrong number of ids.
        let tokens = |stack: &RecurrentStack, p: &Params, table: &[f32], ids: &[u32]| {
            let (packed, mut s) = (stack.pack_recurrence(p, Precision::F32).unwrap(), StackState::zeros(stack, b));
            stack
                .forward_inference_tokens(
                    p,
                    &packed,
                    TokenBatch { table, ids, steps: 1, batch: b },
                    &mut s,
                    &mut InferenceWorkspace::default(),
                )
                .map(|_| ())
        };
        assert!(matches!(tokens(&stack, &p, &[0.0; 3 * 20], &[0, 1]), Err(Error::Config(_))));
        let one_way = RecurrentStack::new(&config(CellKind::Lstm, 2, false, 0.0));
        let p1 = Params::zeros(Arc::new(config(CellKind::Lstm, 2, false, 0.0).layout()));
        let table = vec![0.5; 3 * 4 * one_way.hidden];
        assert!(matches!(tokens(&one_way, &p1, &table[1..], &[0, 1]), Err(Error::Shape(_))));
        assert!(
            matches!(tokens(&one_way, &p1, &table, &[0, 3]), Err(Error::Range(e)) if e.contains("ids[1]") && e.contains("got 3"))
        );
        assert!(matches!(tokens(&one_way, &p1, &table, &[0]), Err(Error::Shape(_))));
        assert!(tokens(&one_way, &p1, &table, &[2, 0]).is_ok());
    }
}
