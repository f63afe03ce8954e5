// The masked family's registry entries (see VARIANTS.md). Appended by variant_registry().
#include "registry.h"

namespace attnscope {

void add_masked_variants(std::vector<VariantInfo>& r) {
  (void)r;
}

}  // namespace attnscope
