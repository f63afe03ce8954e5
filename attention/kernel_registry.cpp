// The kernel family's registry entries (see VARIANTS.md sections 1, 3 and 4). Appended by variant_registry().
#include "registry.h"

namespace attnscope {

void add_kernel_variants(std::vector<VariantInfo>& r) {
  using P = ParamType;
  r.push_back({"linear", "kernel",
               "Linear attention: o_i = phi(q_i)^T S_i / (phi(q_i)^T z_i + eps) with running sums S_i, z_i (an RNN). "
               "ALiBi is not expressible in kernel form and is ignored.",
               "Katharopoulos et al., Transformers are RNNs (2020)",
               {{"feature_map", P::Choice, 0, 1, 0, 1,
                 "phi: elu+1 (always positive) or relu (a row whose denominator is exactly 0 outputs and shows zeros)",
                 false, {"elu+1", "relu"}}},
               true, false, false, "H (d_h d_v + d_h) b state, constant"});
  r.push_back({"performer", "kernel",
               "Performer FAVOR+: positive orthogonal random features estimate exp(q.k / sqrt(d_h)); then linear "
               "attention. Fixed stabiliser (a constant from the drawn features, never a max over the sequence).",
               "Choromanski et al., Rethinking Attention with Performers (2021)",
               {{"features", P::Int, 16, 512, 128, 16,
                 "m: random features per head; the error against softmax falls roughly as 1/sqrt(m)"},
                {"orthogonal", P::Bool, 0, 1, 1, 1,
                 "draw the features in orthogonal blocks (QR with the sign fix, chi-distributed norms); off: i.i.d. "
                 "Gaussian"},
                {"seed", P::Int, 0, 1000, 1, 1, "seed of the random feature draw (fixed per layer, same in training "
                                                "and evaluation)"}},
               true, false, false, "H (m d_v + m) b state, constant"});
  r.push_back({"cosformer", "kernel",
               "cosFormer: relu features re-weighted by cos(pi/2 (i - j) / M), split into sin/cos terms so it stays "
               "an RNN.",
               "Qin et al., cosFormer: Rethinking Softmax in Attention (2022)",
               {{"m", P::Int, 255, 4096, 256, 1,
                 "M: the re-weighting horizon; must be at least context - 1 (weights turn negative past M)"}},
               true, false, false, "H (2 d_h d_v + 2 d_h) b state, constant"});
  r.push_back({"linformer", "low-rank",
               "Linformer: keys and values projected along the sequence by fixed E, F (n x k). Projecting along the "
               "sequence mixes future tokens into every query: an encoder probe, never a decoder.",
               "Wang et al., Linformer: Self-Attention with Linear Complexity (2020)",
               {{"k", P::Int, 8, 256, 64, 8, "k: projected length (slots)"}},
               false, false, true, "none (cannot decode)"});
  r.push_back({"linformer_causal", "low-rank",
               "Causal Linformer: prefix projections K~_i = sum_{j<=i} E_j k_j (and V~ with F), slots with no "
               "support masked; decodes with the k projected slots.",
               "Wang et al. (2020), causal prefix variant",
               {{"k", P::Int, 8, 64, 32, 8, "k: projected slots kept while decoding"}},
               true, false, true, "2 H k d_h b state, constant"});
  r.push_back({"nystrom", "low-rank",
               "Nystromformer: softmax(Q K~^T) pinv(softmax(Q~ K~^T)) softmax(Q~ K^T) with segment-mean landmarks. "
               "The segment means see future tokens: an encoder probe, never a decoder.",
               "Xiong et al., Nystromformer (2021)",
               {{"landmarks", P::Int, 4, 64, 16, 1, "m: landmarks (means of m segments; at most the text's length)"},
                {"pinv_iterations", P::Int, 1, 10, 6, 1, "iterations of the Newton-Schulz pseudo-inverse"},
                {"exact_pinv", P::Bool, 0, 1, 0, 1, "use the exact (SVD) pseudo-inverse instead of the iteration"}},
               false, false, true, "none (cannot decode)"});
  r.push_back({"mla", "low-rank",
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
               true, false, false, "(d_c + d_R) b"});
  r.push_back({"mta", "structured",
               "Multi-token attention: depthwise 2-D convolution of the scores over (query, key), queries past-only, "
               "keys centred; optional head mixing; starts from identity kernels (= MHA).",
               "Golovneva et al., Multi-Token Attention (2025)",
               {{"c_q", P::Int, 1, 6, 3, 1, "query kernel size (past queries; decoding keeps the last c_q - 1)", true},
                {"c_k", P::Int, 1, 11, 5, 2, "key kernel size (odd, centred)", true},
                {"head_group_size", P::Int, 1, 64, 2, 1,
                 "heads mixed together per group before the softmax (1: no head mixing)", true, {}, false, true},
                {"head_norm", P::Bool, 0, 1, 0, 1, "per-head RMSNorm of the head outputs", true}},
               true, false, false, "2 H d_h b + (c_q - 1) H d_h b"});
  r.push_back({"tiled", "exact",
               "Tiled (FlashAttention) softmax: online softmax over Br x Bc tiles, never materialising T x T; "
               "skips tiles the mask empties. Same weights as MHA.",
               "Dao et al., FlashAttention (2022)",
               {{"br", P::Int, 16, 128, 64, 16, "Br: query tile rows (non-divisors of T allowed)"},
                {"bc", P::Int, 16, 128, 64, 16, "Bc: key tile columns (non-divisors of T allowed)"}},
               true, false, false, "2 H d_h b"});
  r.push_back({"differential", "structured",
               "Differential attention: (softmax(Q1 K1^T) - lambda softmax(Q2 K2^T)) V with H/2 heads of value dim "
               "2 d_h; the MHA weights split into pairs of heads. Rows sum to 1 - lambda.",
               "Ye et al., Differential Transformer (2024)",
               {{"lambda", P::Float, 0, 1, 0.5, 0.05, "lambda (fixed override): weight of the subtracted map"},
                {"head_norm", P::Bool, 0, 1, 0, 1, "per-head RMSNorm of the head outputs, scaled by (1 - lambda)",
                 true}},
               true, false, true, "2 H d_h b"});
}

}  // namespace attnscope
