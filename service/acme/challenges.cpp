#include "acme/challenges.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mailconfd::acme {

void Tokens::put(const std::string& token, const std::string& key_authorization) {
  Hook hook;
  {
    std::lock_guard lock(mutex_);
    answers_[token] = key_authorization;
    hook = hook_;
  }
  if (hook) hook(token, &key_authorization);
}

void Tokens::erase(const std::string& token) {
  Hook hook;
  {
    std::lock_guard lock(mutex_);
    answers_.erase(token);
    hook = hook_;
  }
  if (hook) hook(token, nullptr);
}

std::optional<std::string> Tokens::find(std::string_view token) const {
  std::lock_guard lock(mutex_);
  if (answers_.empty() && shared_.empty()) return std::nullopt;
  const std::string key(token);
  if (auto it = answers_.find(key); it != answers_.end()) return it->second;
  if (auto it = shared_.find(key); it != shared_.end()) return it->second;
  return std::nullopt;
}

void Tokens::set_hook(Hook hook) {
  std::lock_guard lock(mutex_);
  hook_ = std::move(hook);
}

void Tokens::set_shared(std::unordered_map<std::string, std::string> shared) {
  std::lock_guard lock(mutex_);
  shared_ = std::move(shared);
}

bool valid_token(std::string_view token) {
  if (token.empty() || token.size() > 128) return false;
  for (const char c : token) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

std::optional<std::string> read_challenge(const std::string& directory, std::string_view token) {
  constexpr std::size_t kMaxBytes = 4096;
  if (!valid_token(token) || directory.empty()) return std::nullopt;
  const std::string path = directory + "/" + std::string(token);
  // O_NONBLOCK: a FIFO planted there cannot hold a worker.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return std::nullopt;
  struct stat st {};
  std::optional<std::string> out;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
      static_cast<std::size_t>(st.st_size) <= kMaxBytes) {
    std::string content(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t got = 0;
    while (got < content.size()) {
      const ssize_t n = ::read(fd, content.data() + got, content.size() - got);
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    if (got == content.size()) out = std::move(content);
  }
  ::close(fd);
  return out;
}

}  // namespace mailconfd::acme
