#pragma once
// Incremental attention maps for a text that changes a little at a time (typing): the maps and loss of the new
// text, Model::attend's to within float rounding, computed from the previous call's state.
//  - append (the usual keystroke): every layer's cache (keys and values, latents, the pattern's slots, ...) goes on
//    from the previous text; only the new query rows of every layer and head are computed;
//  - an edit or deletion at position p: caches that hold one entry per position (plain KV, MLA latents) are cut
//    back to p and the text from p on is run as one chunk; the others start again from position 0;
//  - rows before the first changed position are reused, so is the loss of the predictions before it.
// Variants whose earlier rows depend on later tokens (non-causal, cross-attention), whose caches keep a running
// state instead of per-token keys (linear, kernels, causal Linformer: no matrix while decoding), and mixture-of-
// experts models (routing kept per full pass) are computed whole every time; why() says which and why.
#include <memory>
#include <string>
#include <vector>

#include "engine.h"

namespace attnscope {

struct LayerCache;
struct ChunkRows;
struct PlanesTarget;

class IncrementalAttend {
 public:
  explicit IncrementalAttend(std::shared_ptr<const Model> model);
  ~IncrementalAttend();
  IncrementalAttend(const IncrementalAttend&) = delete;
  IncrementalAttend& operator=(const IncrementalAttend&) = delete;

  // The maps of `tokens` (as Model::attend(tokens)); throws Error as attend does (empty, too long, bad token).
  const AttentionMaps& update(const std::vector<int64_t>& tokens);
  // The last update's maps, shared: an update never changes what maps it has handed out read (an append writes new
  // rows into planes they share, past their own T; engine.h's MapPlanes), so a published result holds them without
  // a copy (the window's keystroke would copy L x H x T x T floats).
  std::shared_ptr<const AttentionMaps> shared() const { return maps_; }

  // What the update that computed the current text did (the same text again computes nothing and keeps these: the
  // window's worker shares one state between a column and the comparison that runs the same model).
  struct Stats {
    bool incremental = false;  // computed from the previous state (else the whole text)
    int64_t reused_rows = 0;   // query rows kept from the previous text
    int64_t computed_rows = 0;
  };
  const Stats& stats() const { return stats_; }
  // "" when this model updates incrementally, else why it is computed whole (shown by the column).
  const std::string& why_whole() const { return why_whole_; }
  const std::shared_ptr<const Model>& model() const { return model_; }

  // The reason Model `m` cannot update incrementally ("" when it can).
  static std::string whole_reason(const Model& m);

 private:
  void run_chunk(const std::vector<int64_t>& tokens, int64_t from);
  // The planes rows from..T-1 go into (planes_ in place, or new ones: see the .cpp), before the chunk's forward.
  PlanesTarget open_planes(const std::vector<int64_t>& tokens, int64_t from) const;
  // Rows from..T-1 from the chunk into them, then planes_, planes_text_ and planes_pairs_.
  void write_planes(const std::vector<int64_t>& tokens, int64_t from, const std::vector<ChunkRows>& chunks,
                    PlanesTarget& t);
  bool cut_caches(int64_t p);

  std::shared_ptr<const Model> model_;
  std::string why_whole_;
  std::vector<int64_t> tokens_;                      // the text the state below belongs to
  std::vector<std::unique_ptr<LayerCache>> caches_;  // after tokens_ (empty: none yet)
  std::vector<float> logits_;                        // [T, V] next-token logits at every position of tokens_
  std::shared_ptr<AttentionMaps> maps_;              // of tokens_ (null: none yet); never changed once shared
  // maps_'s planes when run_chunk made them (null after a whole computation), shared by later results while the text
  // grows; they hold the rows of planes_text_ (the longest text written into them: rows past its length are zero)
  // and planes_pairs_ [L, rows] the pairs computed in each of those rows, all heads.
  std::shared_ptr<MapPlanes> planes_;
  std::vector<int64_t> planes_text_;
  std::vector<int64_t> planes_pairs_;
  Stats stats_;
};

}  // namespace attnscope
