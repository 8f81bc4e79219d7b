//! Ranks under `mpirun`, `mpiexec` or Slurm's `srun` (feature `mpi`): the MPI world the launcher
//! started, how inputs are shared out, and how rank 0 gathers the results. Nothing here spawns
//! processes. Without the feature (or launched alone) the world is one rank and every step is a
//! no-op, so the commands have one code path.

use crate::args::ModelArgs;
use anyhow::Result;
use candle_core::Tensor;
use indicatif::ProgressBar;
use instructor::{Device, Embeddings, EncodeOptions, Input, Instructor};
use instructor_train::Collectives;

/// Who gets the rows of [`World::encode`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Gather {
    /// Rank 0 (which writes the output); the others get `None`.
    Root,
    /// Every rank (which all go on computing the same scores).
    All,
}

/// This process's place in the world.
pub struct World {
    rank: usize,
    size: usize,
    /// This rank's place among the ranks on its machine: which GPU it takes.
    local_rank: usize,
    #[cfg(feature = "mpi")]
    universe: Option<mpi::environment::Universe>,
    /// The host buffer of training's all-reduce, reused from step to step.
    #[cfg(feature = "mpi")]
    scratch: std::cell::RefCell<Vec<f32>>,
}

impl World {
    /// The MPI world when built with `mpi` (a process started without a launcher is a world of
    /// one), else a world of one.
    pub fn init() -> Result<Self> {
        #[cfg(feature = "mpi")]
        {
            use mpi::traits::Communicator;
            let universe =
                mpi::initialize().ok_or_else(|| anyhow::anyhow!("MPI was initialised twice"))?;
            let world = universe.world();
            // The launchers' variables (OpenMPI, MPICH/Intel MPI, Slurm), else MPI-3's shared-memory
            // split of the world, which any MPI has.
            let local_rank = [
                "OMPI_COMM_WORLD_LOCAL_RANK",
                "MPI_LOCALRANKID",
                "SLURM_LOCALID",
            ]
            .iter()
            .find_map(|v| std::env::var(v).ok()?.parse().ok())
            .unwrap_or_else(|| world.split_shared(0).rank() as usize);
            Ok(Self {
                rank: world.rank() as usize,
                size: world.size() as usize,
                local_rank,
                universe: Some(universe),
                scratch: Default::default(),
            })
        }
        #[cfg(not(feature = "mpi"))]
        Ok(Self {
            rank: 0,
            size: 1,
            local_rank: 0,
        })
    }

    /// The model options as this rank uses them: only rank 0 draws progress, and on several
    /// ranks `--device cuda:N` means GPU `N + local rank` (one GPU per rank of a machine).
    pub fn model_args(&self, args: &ModelArgs) -> ModelArgs {
        let mut args = args.clone();
        args.quiet |= !self.is_root();
        if let (Device::Cuda(n), true) = (args.device, self.size > 1) {
            args.device = Device::Cuda(n + self.local_rank);
        }
        args
    }

    /// Runs `f` with the collectives data-parallel training uses on `device`: NCCL between the
    /// ranks' GPUs when built with `nccl` and training on CUDA, else MPI's (through host memory).
    pub fn with_collectives<T>(
        &self,
        device: Device,
        f: impl FnOnce(&dyn Collectives) -> Result<T>,
    ) -> Result<T> {
        #[cfg(feature = "nccl")]
        if let (Device::Cuda(ordinal), true) = (device, self.size > 1) {
            return f(&nccl::Nccl::new(self, ordinal)?);
        }
        let _ = device;
        f(self)
    }

    /// How many ranks the world has.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Rank 0: the one that downloads first, draws progress and writes outputs.
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// Runs `f` on rank 0 first, then on the others (e.g. a download into the shared cache,
    /// which the others then find there).
    pub fn root_first<T>(&self, f: impl Fn() -> Result<T>) -> Result<T> {
        if self.size == 1 {
            return f();
        }
        let first = if self.is_root() { Some(f()?) } else { None };
        self.barrier();
        match first {
            Some(v) => Ok(v),
            None => f(),
        }
    }

    /// Encodes `inputs` across the ranks: each rank runs whole batches of the one-process plan
    /// ([`Instructor::plan`]), dealt by tokens ([`deal`]), so every batch runs as it would in
    /// one process and the rows are the same bits whatever the number of ranks. `bar(n)` makes
    /// the progress bar for this rank's `n` inputs.
    pub fn encode(
        &self,
        model: &Instructor,
        inputs: &[Input],
        opts: &EncodeOptions,
        bar: impl FnOnce(usize) -> ProgressBar,
        to: Gather,
    ) -> instructor::Result<Option<Embeddings>> {
        let shares = if self.size > 1 {
            let tokens = model.tokenize(inputs, opts.max_seq_length)?;
            let tokens: Vec<usize> = tokens.iter().map(|t| t.ids.len()).collect();
            deal(&model.plan(inputs, opts)?, &tokens, self.size)
        } else {
            vec![(0..inputs.len()).collect()]
        };
        let mine: Vec<Input> = shares[self.rank]
            .iter()
            .map(|&i| inputs[i].clone())
            .collect();
        let bar = bar(mine.len());
        let progress = |done: usize, _total: usize| {
            bar.set_position(done as u64);
            Ok(())
        };
        let out = model.encode(
            &mine,
            &EncodeOptions {
                progress: Some(&progress),
                ..*opts
            },
        )?;
        bar.finish_and_clear();
        if self.size == 1 {
            return Ok(Some(out));
        }
        let dim = out.dim;
        let rows = self.gather_rows(&out.data, dim, &shares);
        let rows = match to {
            Gather::Root => rows,
            Gather::All => Some(self.broadcast_rows(rows, inputs.len() * dim)),
        };
        Ok(rows.map(|data| Embeddings {
            data,
            rows: inputs.len(),
            dim,
        }))
    }

    /// Rank 0's `len` values (`Some` there, `None` elsewhere) on every rank, in chunks.
    fn broadcast_rows(&self, rows: Option<Vec<f32>>, len: usize) -> Vec<f32> {
        #[cfg(feature = "mpi")]
        if let Some(u) = &self.universe {
            use mpi::traits::{Communicator, Root};
            let mut rows = rows.unwrap_or_else(|| vec![0f32; len]);
            let world = u.world();
            let root = world.process_at_rank(0);
            for chunk in rows.chunks_mut(CHUNK) {
                root.broadcast_into(chunk);
            }
            return rows;
        }
        let _ = len;
        rows.expect("a world of one is its own root")
    }

    /// The command's `result` on this rank. An error in a world of several ranks is printed
    /// with the rank's name and aborts the world (`MPI_Abort`): the other ranks may be waiting
    /// for this one in a collective, and would otherwise wait forever.
    pub fn finish<T>(&self, result: Result<T>) -> Result<T> {
        #[cfg(feature = "mpi")]
        if let (Err(e), Some(u)) = (&result, &self.universe) {
            if self.size > 1 {
                use mpi::traits::Communicator;
                eprintln!("error: rank {} of {}: {e:#}", self.rank, self.size);
                u.world().abort(1);
            }
        }
        result
    }

    /// Waits until every rank is here.
    pub fn barrier(&self) {
        #[cfg(feature = "mpi")]
        if let Some(u) = &self.universe {
            use mpi::traits::CommunicatorCollectives;
            u.world().barrier();
        }
    }

    /// Rank 0 gets every rank's `dim`-wide rows, put back at the input positions `shares` gave
    /// each rank (`shares[r][j]` is where rank r's row j goes); other ranks send theirs and get
    /// `None`. Point-to-point in chunks, so that no MPI count overflows an `i32` however large
    /// the corpus.
    fn gather_rows(&self, local: &[f32], dim: usize, shares: &[Vec<usize>]) -> Option<Vec<f32>> {
        let total: usize = shares.iter().map(Vec::len).sum();
        if self.size == 1 {
            return Some(scatter_back(vec![(0, local.to_vec())], dim, shares, total));
        }
        #[cfg(feature = "mpi")]
        {
            use mpi::point_to_point::{Destination, Source};
            use mpi::traits::Communicator;
            let world = self.universe.as_ref().expect("initialised").world();
            if !self.is_root() {
                let root = world.process_at_rank(0);
                for chunk in local.chunks(CHUNK) {
                    root.send(chunk);
                }
                return None;
            }
            let mut parts = vec![(0, local.to_vec())];
            for (r, share) in shares.iter().enumerate().skip(1) {
                let mut rows = vec![0f32; share.len() * dim];
                let from = world.process_at_rank(r as i32);
                for chunk in rows.chunks_mut(CHUNK) {
                    from.receive_into(chunk);
                }
                parts.push((r, rows));
            }
            Some(scatter_back(parts, dim, shares, total))
        }
        #[cfg(not(feature = "mpi"))]
        unreachable!("a world without MPI has one rank")
    }
}

/// The collectives of data-parallel training (`instructor train` under mpirun), on MPI's
/// world. Sums use `MPI_Allreduce`, which gives every rank the same result for a built-in
/// operation on the same inputs: the ranks' AdamW steps, and so their weights, stay identical.
impl Collectives for World {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_gather(&self, local: &Tensor) -> candle_core::Result<Tensor> {
        #[cfg(feature = "mpi")]
        if let Some(u) = &self.universe {
            use mpi::traits::CommunicatorCollectives;
            let rows: Vec<f32> = local.flatten_all()?.to_vec1()?;
            assert!(
                rows.len() * self.size <= i32::MAX as usize,
                "one batch's embeddings exceed an MPI count"
            );
            let mut all = vec![0f32; rows.len() * self.size];
            u.world().all_gather_into(&rows[..], &mut all[..]);
            let mut dims = local.dims().to_vec();
            dims[0] *= self.size;
            return Tensor::from_vec(all, dims, local.device());
        }
        Ok(local.clone())
    }

    fn all_reduce_sum(&self, values: &[Tensor]) -> candle_core::Result<Vec<Tensor>> {
        #[cfg(feature = "mpi")]
        if let Some(u) = &self.universe {
            // All of them in one host buffer, kept from step to step: a fresh one of a model's
            // size costs more in page faults than the collective itself (2 s against 0.5 s for
            // instructor-base on this project's machine).
            let mut buf = self.scratch.borrow_mut();
            buf.clear();
            for t in values {
                let (storage, layout) = t.storage_and_layout();
                match (&*storage, layout.contiguous_offsets()) {
                    (candle_core::Storage::Cpu(cpu), Some((a, b))) => {
                        buf.extend_from_slice(&cpu.as_slice::<f32>()?[a..b])
                    }
                    _ => buf.extend(t.flatten_all()?.to_vec1::<f32>()?),
                }
            }
            all_reduce(u, &mut buf);
            let mut at = 0;
            return values
                .iter()
                .map(|t| {
                    let n = t.elem_count();
                    at += n;
                    Tensor::from_slice(&buf[at - n..at], t.shape(), t.device())
                })
                .collect();
        }
        Ok(values.to_vec())
    }

    fn all_reduce_count(&self, values: &mut [u64]) {
        #[cfg(feature = "mpi")]
        if let Some(u) = &self.universe {
            all_reduce(u, values);
        }
        let _ = values;
    }

    fn barrier(&self) {
        World::barrier(self);
    }
}

/// Sums `values` over the world in place, in chunks of [`CHUNK`] (a model's gradients are more
/// values than an MPI count holds).
#[cfg(feature = "mpi")]
fn all_reduce<T: mpi::datatype::Equivalence + Copy>(
    u: &mpi::environment::Universe,
    values: &mut [T],
) {
    use mpi::collective::SystemOperation;
    use mpi::traits::CommunicatorCollectives;
    let world = u.world();
    let mut send = Vec::with_capacity(values.len().min(CHUNK));
    for chunk in values.chunks_mut(CHUNK) {
        send.clear();
        send.extend_from_slice(chunk);
        world.all_reduce_into(&send[..], chunk, SystemOperation::sum());
    }
}

/// The most values one MPI call moves: counts are `i32`, and a corpus's embeddings are more.
#[cfg(feature = "mpi")]
const CHUNK: usize = 1 << 26;

/// Rows of each rank, back in input order.
fn scatter_back(
    parts: Vec<(usize, Vec<f32>)>,
    dim: usize,
    shares: &[Vec<usize>],
    total: usize,
) -> Vec<f32> {
    let mut out = vec![0f32; total * dim];
    for (r, rows) in parts {
        for (row, &i) in rows.chunks_exact(dim.max(1)).zip(&shares[r]) {
            out[i * dim..(i + 1) * dim].copy_from_slice(row);
        }
    }
    out
}

/// Deals whole batches of a plan ([`instructor::Instructor::plan`]) to `ranks` so that each
/// has about the same number of tokens (`tokens[i]`: input i's): in plan order (longest first),
/// each batch to the rank with the fewest tokens so far (ties: the lower rank). Returns each
/// rank's input indices, its batches concatenated in plan order, which the rank's own encode
/// then batches the same way. Deterministic, so every rank computes the same deal.
pub fn deal(plan: &[Vec<usize>], tokens: &[usize], ranks: usize) -> Vec<Vec<usize>> {
    let mut shares = vec![Vec::new(); ranks];
    let mut load = vec![0usize; ranks];
    for batch in plan {
        let r = (0..ranks).min_by_key(|&r| (load[r], r)).expect("ranks > 0");
        load[r] += batch.iter().map(|&i| tokens[i]).sum::<usize>();
        shares[r].extend(batch);
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deal_balances_tokens_and_keeps_batches_whole() {
        let tokens = [512, 7, 300, 300, 44, 2, 90, 512, 16];
        let plan = vec![vec![0, 7], vec![2, 3], vec![6, 4], vec![8, 1], vec![5]];
        let shares = deal(&plan, &tokens, 2);
        assert_eq!(shares, vec![vec![0, 7], vec![2, 3, 6, 4, 8, 1, 5]]);
        let load = |s: &Vec<usize>| s.iter().map(|&i| tokens[i]).sum::<usize>();
        assert_eq!((load(&shares[0]), load(&shares[1])), (1024, 759));
        assert_eq!(deal(&plan, &tokens, 1), vec![plan.concat()]);
        assert_eq!(deal(&[], &[], 2), vec![Vec::<usize>::new(), vec![]]);
    }

    #[test]
    fn one_rank_gathers_its_rows_back_into_input_order() {
        let world = World::init().unwrap();
        let shares = vec![vec![2, 0, 1]];
        let local = [20., 21., 0., 1., 10., 11.];
        let out = world.gather_rows(&local, 2, &shares).unwrap();
        assert_eq!(out, vec![0., 1., 10., 11., 20., 21.]);
    }
}

/// NCCL between the ranks' GPUs (feature `nccl`), set up as NCCL's documentation does under MPI:
/// rank 0 makes the unique id, MPI broadcasts it, and each rank initialises its communicator on
/// its GPU. The tensors' all-gather and all-reduce run on NCCL; counts and barriers stay on MPI.
#[cfg(feature = "nccl")]
mod nccl {
    use super::World;
    use anyhow::{anyhow, Result};
    use candle_core::backend::BackendDevice;
    use candle_core::cuda_backend::cudarc::driver::CudaContext;
    use candle_core::cuda_backend::cudarc::nccl::{Comm, Id, ReduceOp};
    use candle_core::{CpuStorage, CudaStorage, CustomOp1, Layout, Shape, Tensor};
    use instructor_train::Collectives;

    pub struct Nccl<'w> {
        world: &'w World,
        comm: Comm,
    }

    impl<'w> Nccl<'w> {
        pub fn new(world: &'w World, ordinal: usize) -> Result<Self> {
            use mpi::traits::{Communicator, Root};
            let universe = world.universe.as_ref().expect("several ranks: MPI is up");
            let mut id = [0; 128];
            if world.is_root() {
                id = *Id::new()
                    .map_err(|e| anyhow!("NCCL: cannot make a unique id: {e:?}"))?
                    .internal();
            }
            universe
                .world()
                .process_at_rank(0)
                .broadcast_into(&mut id[..]);
            let stream = CudaContext::new(ordinal)
                .and_then(|ctx| ctx.new_stream())
                .map_err(|e| anyhow!("NCCL: cannot use CUDA device {ordinal}: {e:?}"))?;
            let comm = Comm::from_rank(stream, world.rank, world.size, Id::uninit(id))
                .map_err(|e| anyhow!("NCCL: rank {} cannot join: {e:?}", world.rank))?;
            Ok(Self { world, comm })
        }
    }

    impl Collectives for Nccl<'_> {
        fn rank(&self) -> usize {
            self.world.rank
        }
        fn size(&self) -> usize {
            self.world.size
        }
        fn all_gather(&self, local: &Tensor) -> candle_core::Result<Tensor> {
            local.apply_op1_no_bwd(&Op {
                comm: &self.comm,
                gather: true,
            })
        }
        fn all_reduce_sum(&self, values: &[Tensor]) -> candle_core::Result<Vec<Tensor>> {
            let flat: Vec<Tensor> = values
                .iter()
                .map(Tensor::flatten_all)
                .collect::<candle_core::Result<_>>()?;
            let sum = Tensor::cat(&flat, 0)?.apply_op1_no_bwd(&Op {
                comm: &self.comm,
                gather: false,
            })?;
            let mut at = 0;
            values
                .iter()
                .map(|t| {
                    at += t.elem_count();
                    sum.narrow(0, at - t.elem_count(), t.elem_count())?
                        .reshape(t.shape())
                })
                .collect()
        }
        fn all_reduce_count(&self, values: &mut [u64]) {
            self.world.all_reduce_count(values)
        }
        fn barrier(&self) {
            World::barrier(self.world)
        }
    }

    /// One NCCL collective on a CUDA tensor, as a candle op (the way candle's own multi-GPU
    /// example reaches a tensor's device memory).
    struct Op<'a> {
        comm: &'a Comm,
        /// All-gather along the first dimension; else all-reduce with a sum.
        gather: bool,
    }

    impl CustomOp1 for Op<'_> {
        fn name(&self) -> &'static str {
            if self.gather {
                "nccl-all-gather"
            } else {
                "nccl-all-reduce"
            }
        }

        fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
            candle_core::bail!("NCCL moves CUDA tensors only")
        }

        fn cuda_fwd(
            &self,
            s: &CudaStorage,
            l: &Layout,
        ) -> candle_core::Result<(CudaStorage, Shape)> {
            let fail = |e| candle_core::Error::Msg(format!("{}: {e:?}", self.name()));
            let Some((start, end)) = l.contiguous_offsets() else {
                candle_core::bail!("{}: the tensor is not contiguous", self.name())
            };
            let src = s.as_cuda_slice::<f32>()?.slice(start..end);
            let n = self.comm.world_size();
            let (len, mut dims) = (end - start, l.dims().to_vec());
            if self.gather {
                dims[0] *= n;
            }
            let mut dst = s
                .device
                .alloc_zeros::<f32>(if self.gather { len * n } else { len })?;
            // The communicator has its own stream: wait for candle's to have written the input,
            // and for NCCL's to have written the output.
            s.device.synchronize()?;
            if self.gather {
                self.comm.all_gather(&src, &mut dst).map_err(fail)?;
            } else {
                self.comm
                    .all_reduce(&src, &mut dst, &ReduceOp::Sum)
                    .map_err(fail)?;
            }
            self.comm
                .stream()
                .synchronize()
                .map_err(|e| candle_core::Error::Msg(format!("{}: {e:?}", self.name())))?;
            Ok((
                CudaStorage::wrap_cuda_slice(dst, s.device.clone()),
                Shape::from(dims),
            ))
        }
    }
}
