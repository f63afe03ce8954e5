// The kernel family's registry entries (docs/variants.md: #family-kernel, #family-low-rank, #family-structured). Appended by variant_registry().
#include "registry.h"

namespace attnscope {

namespace {

// Kernel feature maps: softmax replaced by phi(q) . phi(k), computed as running sums.
void add_feature_map_variants(std::vector<VariantInfo>& r) {
  using P = ParamType;
  r.push_back({"linear",
               "kernel",
               "Linear attention: o_i = phi(q_i)^T S_i / (phi(q_i)^T z_i + eps) with running sums S_i, z_i (an RNN). "
               "ALiBi is not expressible in kernel form and is ignored.",
               "Katharopoulos et al., Transformers are RNNs (2020)",
               {{"feature_map",
                 P::Choice,
                 0,
                 1,
                 0,
                 1,
                 "phi: elu+1 (always positive) or relu (a row whose denominator is exactly 0 outputs and shows "
                 "zeros)",
                 false,
                 {"elu+1", "relu"}}},
               true,
               false,
               false,
               "H (d_h d_v + d_h) b state, constant",
               {"phi = {feature_map}; S_i = sum over j <= i of phi(k_j) v_j^T, z_i = sum over j <= i of phi(k_j); o_i "
                "= phi(q_i)^T "
                "S_i / (phi(q_i)^T z_i + eps)",
                "O(n H d_h^2) = O(n d d_h): linear in n",
                "O(H d_h^2) state when run as an RNN (the cumulative-sum prefill holds O(n H d_h^2))",
                "Constant-memory decoding and linear-time prefill for very long sequences. Its kernel does not "
                "sharpen like exp, so it cannot focus on one key (copying, recall), and with MHA weights the "
                "loss rises clearly; it needs training from scratch."}});
  r.push_back({"performer",
               "kernel",
               "Performer FAVOR+: positive orthogonal random features estimate exp(q.k / sqrt(d_h)); then linear "
               "attention. Fixed stabiliser (a constant from the drawn features, never a max over the sequence).",
               "Choromanski et al., Rethinking Attention with Performers (2021)",
               {{"features", P::Int, 16, 512, 128, 16,
                 "m: random features per head; the error against softmax falls roughly as 1/sqrt(m)"},
                {"orthogonal", P::Bool, 0, 1, 1, 1,
                 "draw the features in orthogonal blocks (QR with the sign fix, chi-distributed norms); off: i.i.d. "
                 "Gaussian"},
                {"seed", P::Int, 0, 1000, 1, 1,
                 "seed of the random feature draw (fixed per layer, same in training "
                 "and evaluation)"}},
               true,
               false,
               false,
               "H (m d_v + m) b state, constant",
               {"phi(x) = exp(w_r . x - |x|^2 / 2) / sqrt({features}) for {features} random w_r (orthogonal "
                "blocks: {orthogonal}; draw: {seed}), x = q / d_h^(1/4); then linear attention with phi",
                "O(n H {features} d_h)", "O(H {features} d_h) state",
                "An unbiased estimate of softmax attention at linear cost, for n much larger than m. The "
                "estimate's variance is large for peaked attention, so at n = 256 it is slower and worse than "
                "exact attention; raise m to watch the error fall roughly as 1/sqrt(m)."}});
  r.push_back({"cosformer",
               "kernel",
               "cosFormer: relu features re-weighted by cos(pi/2 (i - j) / M), split into sin/cos terms so it stays "
               "an RNN.",
               "Qin et al., cosFormer: Rethinking Softmax in Attention (2022)",
               {{"m",
                 P::Int,
                 255,
                 1 << 20,
                 256,
                 1,
                 "M: the re-weighting horizon; must be at least context - 1 (weights turn negative past M)",
                 false,
                 {},
                 true}},
               true,
               false,
               false,
               "H (2 d_h d_v + 2 d_h) b state, constant",
               {"phi = relu; A_ij proportional to phi(q_i) . phi(k_j) cos(pi/2 (i - j) / {m}), split into sin/cos "
                "terms so it runs as an RNN",
                "O(n H d_h^2)", "O(H d_h^2) state (two of them)",
                "Linear attention with a locality bias: the cosine weight decays with distance at no extra "
                "asymptotic cost. It is still a kernel without a sharp focus, and M must cover the context or "
                "weights turn negative."}});
}

// Low-rank: keys and values projected to k rows (Linformer), landmarks (Nystrom) or a latent (MLA).
void add_low_rank_variants(std::vector<VariantInfo>& r) {
  using P = ParamType;
  r.push_back({"linformer",
               "low-rank",
               "Linformer: keys and values projected along the sequence by fixed E, F (n x k). Projecting along the "
               "sequence mixes future tokens into every query: an encoder probe, never a decoder.",
               "Wang et al., Linformer: Self-Attention with Linear Complexity (2020)",
               {{"k", P::Int, 8, 256, 64, 8, "k: projected length (slots)"}},
               false,
               false,
               true,
               "none (cannot decode)",
               {"K~ = E^T K, V~ = F^T V with fixed E, F of n x {k}; A = softmax(Q K~^T / sqrt(d_h)) (n x k), o = A "
                "V~",
                "O(n {k} d)", "O(H n {k}) scores",
                "Fixed-length encoders (classification), where an n x k matrix replaces n x n. Never a decoder: "
                "projecting along the sequence mixes future tokens into every query (the non-causal badge)."}});
  r.push_back(
      {"linformer_causal",
       "low-rank",
       "Causal Linformer: prefix projections K~_i = sum_{j<=i} E_j k_j (and V~ with F), slots with no "
       "support masked; decodes with the k projected slots.",
       "Wang et al. (2020), causal prefix variant",
       {{"k", P::Int, 8, 64, 32, 8, "k: projected slots kept while decoding"}},
       true,
       false,
       true,
       "2 H k d_h b state, constant",
       {"K~_i = sum over j <= i of E_j k_j and V~_i = sum over j <= i of F_j v_j ({k} prefix slots); A_i = softmax(q_i "
        "K~_i^T / sqrt(d_h)), o_i = A_i V~_i",
        "O(n {k} d)", "O(H n {k}) scores; the state is {k} projected slots",
        "A causal low-rank memory: k slots of constant size while decoding. The slots mix all past "
        "tokens with fixed weights, so precise recall suffers; mainly a teaching contrast with "
        "Linformer."}});
  r.push_back({"nystrom",
               "low-rank",
               "Nystromformer: softmax(Q K~^T) pinv(softmax(Q~ K~^T)) softmax(Q~ K^T) with segment-mean landmarks. "
               "The segment means see future tokens: an encoder probe, never a decoder.",
               "Xiong et al., Nystromformer (2021)",
               {{"landmarks", P::Int, 4, 64, 16, 1, "m: landmarks (means of m segments; at most the text's length)"},
                {"pinv_iterations", P::Int, 1, 10, 6, 1, "iterations of the Newton-Schulz pseudo-inverse"},
                {"exact_pinv", P::Bool, 0, 1, 0, 1, "use the exact (SVD) pseudo-inverse instead of the iteration"}},
               false,
               false,
               true,
               "none (cannot decode)",
               {"A^ = softmax(Q K~^T) pinv(softmax(Q~ K~^T)) softmax(Q~ K^T) with {landmarks} segment-mean "
                "landmarks Q~, K~; pinv by {pinv_iterations} Newton-Schulz steps, or exact ({exact_pinv})",
                "O(n {landmarks} d + {landmarks}^3)", "O(H n {landmarks}) matrices",
                "Approximates full softmax attention in encoders at linear cost when attention is smooth (low "
                "rank). Not causal, because the segment means see the future, and poor for sharp attention."}});
  r.push_back({"mla",
               "low-rank",
               "Multi-head latent attention: keys and values up-projected from a shared latent c (rank d_c), "
               "decoupled RoPE dims; decoding caches only c and k_R and absorbs W_UK into the query. Converts an MHA "
               "checkpoint by truncated SVD.",
               "DeepSeek-AI, DeepSeek-V2 (2024)",
               {{"rank", P::Int, 16, 128, 64, 8,
                 "d_c: latent rank of the joint key/value projection (SVD of [W_K; W_V] when converting MHA)", true},
                {"rope_dims", P::Int, 0, 32, 8, 2, "d_R: decoupled RoPE dims shared by all heads (even)", true},
                {"q_rank", P::Int, 32, 192, 128, 8, "d_cq: latent rank of the query projection", true},
                {"content_rope", P::Bool, 0, 1, 1, 1,
                 "also rotate the per-head content q/k with the model's RoPE (needed to convert a RoPE-trained MHA); "
                 "W_UK can then not be absorbed, so decoding up-projects the cached latents. Off: DeepSeek-V2 "
                 "exactly, absorbed decoding"},
                {"latent_norm", P::Bool, 0, 1, 0, 1,
                 "RMS-norm the latents c and c_q (DeepSeek-V2); off by default because the norm is not linear, so an "
                 "MHA checkpoint cannot be converted with it",
                 true}},
               true,
               false,
               false,
               "(d_c + d_R) b",
               {"c = W_DKV x (rank {rank}); k^h = W_UK^h c, v^h = W_UV^h c; c_q = W_DQ x (rank {q_rank}), q^h = "
                "W_UQ^h c_q; s = (q^h . k^h + q_R^h . k_R) / sqrt(d_h + {rope_dims}); {content_rope}, "
                "{latent_norm} as set",
                "O(n^2 H (d_h + d_R) + n d ({rank} + {q_rank}))", "O(H n^2) scores",
                "The smallest exact-softmax KV cache (DeepSeek-V2): a shared latent of d_c + d_R numbers per "
                "token instead of 2 H d_h. Converting MHA by truncated SVD loses what rank d_c cannot hold, so "
                "fine-tune for quality; not worth it when the cache is not the bottleneck."}});
}

// Structured: convolved scores (MTA), the tiled exact kernel, differences of two maps.
void add_structured_variants(std::vector<VariantInfo>& r) {
  using P = ParamType;
  r.push_back({"mta",
               "structured",
               "Multi-token attention: depthwise 2-D convolution of the scores over (query, key), queries past-only, "
               "keys centred; optional head mixing; starts from identity kernels (= MHA).",
               "Golovneva et al., Multi-Token Attention (2025)",
               {{"c_q", P::Int, 1, 6, 3, 1, "query kernel size (past queries; decoding keeps the last c_q - 1)", true},
                {"c_k", P::Int, 1, 11, 5, 2, "key kernel size (odd, centred)", true},
                {"head_group_size",
                 P::Int,
                 1,
                 64,
                 2,
                 1,
                 "heads mixed together per group before the softmax (1: no head mixing)",
                 true,
                 {},
                 false,
                 true},
                {"head_norm", P::Bool, 0, 1, 0, 1, "per-head RMSNorm of the head outputs", true}},
               true,
               false,
               false,
               "2 H d_h b + (c_q - 1) H d_h b",
               {"S = Q K^T / sqrt(d_h) (masked entries 0); S' = depthwise conv2d of S per head with a {c_q} x "
                "{c_k} kernel (queries past-only, keys centred), heads mixed in groups of {head_group_size}; A = "
                "softmax(S' + causal mask); {head_norm}",
                "O(n^2 (d + H {c_q} {c_k}))", "O(H n^2) scores",
                "Lets a query's weights depend on neighbouring queries and keys, so it can find a multi-token "
                "phrase instead of one token. It must be trained: from MHA weights it starts at identity "
                "kernels (exactly MHA), and it keeps the O(n^2) cost."}});
  r.push_back({"tiled",
               "exact",
               "Tiled (FlashAttention) softmax: online softmax over Br x Bc tiles, never materialising T x T; "
               "skips tiles the mask empties. Same weights as MHA.",
               "Dao et al., FlashAttention (2022)",
               {{"br", P::Int, 16, 128, 64, 16, "Br: query tile rows (non-divisors of T allowed)"},
                {"bc", P::Int, 16, 128, 64, 16, "Bc: key tile columns (non-divisors of T allowed)"}},
               true,
               false,
               false,
               "2 H d_h b",
               {"for each {br} x {bc} tile of S = Q K^T / sqrt(d_h): m' = max(m, rowmax S); l = e^(m - m') l + "
                "rowsum e^(S - m'); O = e^(m - m') O + e^(S - m') V; finally o = O / l",
                "O(n^2 d) (the same FLOPs as MHA; tiles the mask empties are skipped)",
                "O(n ({br} + {bc})) working set: the n x n matrix is never stored",
                "Exact attention in linear memory: the right choice whenever exact attention must reach long n "
                "(FlashAttention). On this CPU the tile loop in LibTorch has overhead, so at short n it is "
                "slower than naive; the gain is memory here, and speed on GPUs."}});
  r.push_back(
      {"differential",
       "structured",
       "Differential attention: (softmax(Q1 K1^T) - lambda softmax(Q2 K2^T)) V with H/2 heads of value dim "
       "2 d_h; the MHA weights split into pairs of heads. Rows sum to 1 - lambda.",
       "Ye et al., Differential Transformer (2024)",
       {{"lambda", P::Float, 0, 1, 0.5, 0.05, "lambda (fixed override): weight of the subtracted map"},
        {"head_norm", P::Bool, 0, 1, 0, 1, "per-head RMSNorm of the head outputs, scaled by (1 - lambda)", true}},
       true,
       false,
       true,
       "2 H d_h b",
       {"A = softmax(Q1 K1^T / sqrt(d_h)) - {lambda} softmax(Q2 K2^T / sqrt(d_h)); o = A V with H/2 heads "
        "of width 2 d_h; {head_norm}",
        "O(n^2 d) (as MHA)", "O(H n^2) scores",
        "Cancels attention noise that the two maps share (Differential Transformer): sharper focus and "
        "less weight on irrelevant context, once trained. With MHA weights split into pairs of heads "
        "the maps were never trained to cancel, so any lambda > 0 raises the loss."}});
}

}  // namespace

void add_kernel_variants(std::vector<VariantInfo>& r) {
  add_feature_map_variants(r);
  add_low_rank_variants(r);
  add_structured_variants(r);
}

}  // namespace attnscope
