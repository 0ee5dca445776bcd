// Private to common/: one unique_ptr deleter for any OpenSSL "free" function, so every
// OpenSSL handle type is owned with a one-line alias.
#pragma once

#include <memory>

namespace vcrm::detail {

template <auto FreeFn>
struct OsslDeleter {
  template <typename T>
  void operator()(T* p) const {
    FreeFn(p);
  }
};

template <typename T, auto FreeFn>
using OsslPtr = std::unique_ptr<T, OsslDeleter<FreeFn>>;

}  // namespace vcrm::detail
