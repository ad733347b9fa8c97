#include "dns/check.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <poll.h>

#include <algorithm>
#include <charconv>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <unordered_map>

#include <fmt/format.h>

#include "core/ascii.h"
#include "dns/zone.h"

namespace mailconfd::dns {
namespace {

// "name." for a host name; "." stays ".". c-ares returns the root as "".
std::string absolute(std::string_view host) {
  if (host.empty() || host == ".") return ".";
  std::string out = ascii_lower(host);
  if (out.back() != '.') out += '.';
  return out;
}

// What one lookup came back with. Absent (NXDOMAIN/NODATA) is an answer, not a failure.
enum class Outcome { Answer, NxDomain, NoData, Timeout, ServFail, Failed };

struct Reply {
  Outcome outcome = Outcome::Failed;
  const unsigned char* data = nullptr;
  int length = 0;
  std::string error;  // for Failed: the c-ares reason
};

Reply classify(int status, const unsigned char* data, int length) {
  Reply r;
  r.data = data;
  r.length = length;
  switch (status) {
    case ARES_SUCCESS:
      r.outcome = Outcome::Answer;
      break;
    case ARES_ENOTFOUND:
      r.outcome = Outcome::NxDomain;
      break;
    case ARES_ENODATA:
      r.outcome = Outcome::NoData;
      break;
    case ARES_ETIMEOUT:
      r.outcome = Outcome::Timeout;
      break;
    case ARES_ESERVFAIL:
      r.outcome = Outcome::ServFail;
      break;
    case ARES_EREFUSED:
      r.outcome = Outcome::Failed;
      r.error = "REFUSED";
      break;
    default:
      r.outcome = Outcome::Failed;
      r.error = ares_strerror(status);
      break;
  }
  return r;
}

// Records of the answer section (c-ares 1.18 has no parser for CNAME rdata).
struct AnswerRecord {
  std::string owner;  // absolute, lowercase
  int type = 0;
  std::string target;  // CNAME only: absolute, lowercase
};

std::vector<AnswerRecord> answer_records(const unsigned char* buf, int length) {
  std::vector<AnswerRecord> out;
  if (buf == nullptr || length < NS_HFIXEDSZ) return out;
  const int questions = (buf[4] << 8) | buf[5];
  const int answers = (buf[6] << 8) | buf[7];
  const unsigned char* p = buf + NS_HFIXEDSZ;
  const unsigned char* end = buf + length;
  auto name_at = [&](const unsigned char* at, std::string& name, long& used) {
    char* expanded = nullptr;
    if (ares_expand_name(at, buf, length, &expanded, &used) != ARES_SUCCESS) return false;
    name = absolute(expanded);
    ares_free_string(expanded);
    return true;
  };
  std::string name;
  long used = 0;
  for (int i = 0; i < questions; ++i) {
    if (!name_at(p, name, used) || end - p < used + NS_QFIXEDSZ) return out;
    p += used + NS_QFIXEDSZ;
  }
  for (int i = 0; i < answers; ++i) {
    AnswerRecord record;
    if (!name_at(p, record.owner, used) || end - p < used + NS_RRFIXEDSZ) return out;
    p += used;
    record.type = (p[0] << 8) | p[1];
    const int rdlength = (p[8] << 8) | p[9];
    p += NS_RRFIXEDSZ;
    if (end - p < rdlength) return out;
    if (record.type == ns_t_cname && !name_at(p, record.target, used)) return out;
    p += rdlength;
    out.push_back(std::move(record));
  }
  return out;
}

// A c-ares channel with a queue in front of it: at most max_in_flight queries outstanding.
class Lookups {
 public:
  using Done = std::function<void(const Reply&)>;

  Lookups() = default;
  Lookups(const Lookups&) = delete;
  Lookups& operator=(const Lookups&) = delete;
  ~Lookups() {
    if (channel_ != nullptr) ares_destroy(channel_);
  }

  std::string init(const CheckOptions& options) {
    max_in_flight_ = std::max<std::size_t>(options.max_in_flight, 1);
    ares_options o{};
    o.timeout = static_cast<int>(options.timeout.count());
    o.tries = options.tries;
    // NOCHECKRESP: SERVFAIL and REFUSED come back as themselves instead of being retried into
    // a generic failure. NOSEARCH: names are absolute.
    o.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_NOSEARCH;
    int status =
        ares_init_options(&channel_, &o, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS);
    if (status != ARES_SUCCESS)
      return fmt::format("cannot set up the resolver: {}", ares_strerror(status));
    if (options.resolver) {
      ares_addr_port_node server{};
      server.next = nullptr;
      server.udp_port = options.resolver->port;
      server.tcp_port = options.resolver->port;
      if (inet_pton(AF_INET, options.resolver->ip.c_str(), &server.addr.addr4) == 1) {
        server.family = AF_INET;
      } else if (inet_pton(AF_INET6, options.resolver->ip.c_str(), &server.addr.addr6) == 1) {
        server.family = AF_INET6;
      } else {
        return fmt::format("'{}' is not an IP address", options.resolver->ip);
      }
      status = ares_set_servers_ports(channel_, &server);
      if (status != ARES_SUCCESS)
        return fmt::format("cannot use resolver {}: {}", options.resolver->ip,
                           ares_strerror(status));
    }
    return {};
  }

  void query(std::string name, int type, Done done) {
    queue_.push_back(
        std::make_unique<Pending>(Pending{this, std::move(name), type, std::move(done)}));
    pump();
  }

  // Runs until every query, including those queued by callbacks, has completed.
  void run() {
    while (in_flight_ > 0 || !queue_.empty()) {
      ares_socket_t sockets[ARES_GETSOCK_MAXNUM];
      const int mask = ares_getsock(channel_, sockets, ARES_GETSOCK_MAXNUM);
      pollfd fds[ARES_GETSOCK_MAXNUM];
      nfds_t count = 0;
      for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
        short events = 0;
        if (ARES_GETSOCK_READABLE(mask, i)) events |= POLLIN;
        if (ARES_GETSOCK_WRITABLE(mask, i)) events |= POLLOUT;
        if (events == 0) continue;
        fds[count++] = pollfd{sockets[i], events, 0};
      }
      timeval wait{};
      timeval longest{1, 0};
      ares_timeout(channel_, &longest, &wait);
      const int ms = static_cast<int>(wait.tv_sec * 1000 + wait.tv_usec / 1000) + 1;
      const int ready = poll(fds, count, ms);
      if (ready <= 0) {
        ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
        continue;
      }
      for (nfds_t i = 0; i < count; ++i) {
        const bool in = (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) != 0;
        const bool out = (fds[i].revents & POLLOUT) != 0;
        if (!in && !out) continue;
        ares_process_fd(channel_, in ? fds[i].fd : ARES_SOCKET_BAD,
                        out ? fds[i].fd : ARES_SOCKET_BAD);
      }
    }
  }

 private:
  struct Pending {
    Lookups* self;
    std::string name;
    int type;
    Done done;
  };

  void pump() {
    while (in_flight_ < max_in_flight_ && !queue_.empty()) {
      Pending* pending = queue_.front().release();
      queue_.pop_front();
      ++in_flight_;
      ares_query(channel_, pending->name.c_str(), ns_c_in, pending->type, &Lookups::answered,
                 pending);
    }
  }

  static void answered(void* arg, int status, int /*timeouts*/, unsigned char* buf, int length) {
    std::unique_ptr<Pending> pending(static_cast<Pending*>(arg));
    Lookups& self = *pending->self;
    --self.in_flight_;
    if (status != ARES_EDESTRUCTION) pending->done(classify(status, buf, length));
    if (status != ARES_EDESTRUCTION) self.pump();
  }

  ares_channel channel_ = nullptr;
  std::deque<std::unique_ptr<Pending>> queue_;
  std::size_t in_flight_ = 0;
  std::size_t max_in_flight_ = 256;
};

std::string describe(const Record& r) {
  switch (r.type) {
    case RecordType::Srv:
      return fmt::format("{} {} {} {}", r.priority, r.weight, r.port, absolute(r.target));
    case RecordType::Mx:
      return fmt::format("{} {}", r.priority, absolute(r.target));
    case RecordType::Cname:
      return absolute(r.target);
  }
  return {};
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

// A failed or empty lookup as a problem; nullopt when there is an answer to compare.
std::optional<Problem> lookup_problem(const Reply& reply, const std::string& name,
                                      std::string_view type) {
  Problem p{Finding::Missing, name, std::string(type), {}};
  switch (reply.outcome) {
    case Outcome::Answer:
      return std::nullopt;
    case Outcome::NxDomain:
      p.detail = fmt::format("no {} record (NXDOMAIN)", type);
      break;
    case Outcome::NoData:
      p.detail = fmt::format("no {} record (NODATA)", type);
      break;
    case Outcome::Timeout:
      p.finding = Finding::Timeout;
      p.detail = "no answer from the resolver";
      break;
    case Outcome::ServFail:
      p.finding = Finding::ServFail;
      p.detail = "the resolver answered SERVFAIL";
      break;
    case Outcome::Failed:
      p.finding = Finding::LookupError;
      p.detail = reply.error;
      break;
  }
  return p;
}

// Runs the checks for all domains on one Lookups; target lookups are shared between domains.
class Checker {
 public:
  Checker(const Config& config, Lookups& lookups, std::vector<DomainReport>& reports)
      : config_(config), lookups_(lookups), reports_(reports) {}

  void start(std::size_t index) {
    const std::string& domain = reports_[index].domain;
    const DomainEntry entry = *config_.domains.find(domain);
    auto& expected = expected_[{entry.provider, entry.hosts}];
    if (expected.empty()) expected = records(config_, entry);
    std::map<std::pair<std::string, RecordType>, std::vector<Record>> groups;
    for (const Record& r : for_domain(expected, domain)) groups[{r.owner, r.type}].push_back(r);
    for (auto& [key, wanted] : groups) {
      const std::string name = key.first == "@" ? domain + "." : key.first + "." + domain + ".";
      switch (key.second) {
        case RecordType::Srv:
          lookups_.query(name, ns_t_srv, [this, index, name, wanted](const Reply& reply) {
            check_srv(index, name, wanted, reply);
          });
          break;
        case RecordType::Mx:
          lookups_.query(name, ns_t_mx, [this, index, name, wanted](const Reply& reply) {
            check_mx(index, name, wanted, reply);
          });
          break;
        case RecordType::Cname:
          lookups_.query(name, ns_t_cname, [this, index, name, wanted](const Reply& reply) {
            check_cname(index, name, wanted, reply);
          });
          break;
      }
    }
  }

 private:
  void add(std::size_t index, Problem problem) {
    reports_[index].problems.push_back(std::move(problem));
  }

  void check_srv(std::size_t index, const std::string& name, const std::vector<Record>& wanted,
                 const Reply& reply) {
    if (auto p = lookup_problem(reply, name, "SRV")) return add(index, std::move(*p));
    ares_srv_reply* list = nullptr;
    if (ares_parse_srv_reply(reply.data, reply.length, &list) != ARES_SUCCESS) {
      return add(index, {Finding::Missing, name, "SRV", "no SRV record (answer has none)"});
    }
    std::vector<Record> found;
    for (ares_srv_reply* s = list; s != nullptr; s = s->next) {
      found.push_back({"", RecordType::Srv, s->priority, s->weight, s->port, absolute(s->host)});
    }
    ares_free_data(list);
    compare(index, name, "SRV", wanted, found);
    for (const Record& r : found) {
      if (r.target != ".") check_target(index, name, "SRV", r.target);
    }
  }

  void check_mx(std::size_t index, const std::string& name, const std::vector<Record>& wanted,
                const Reply& reply) {
    if (auto p = lookup_problem(reply, name, "MX")) {
      if (p->finding == Finding::Missing)
        p->detail += ": Thunderbird's MX-based lookup cannot find the provider";
      return add(index, std::move(*p));
    }
    ares_mx_reply* list = nullptr;
    if (ares_parse_mx_reply(reply.data, reply.length, &list) != ARES_SUCCESS) {
      return add(index, {Finding::Missing, name, "MX", "no MX record (answer has none)"});
    }
    std::vector<std::pair<std::uint16_t, std::string>> found;
    for (ares_mx_reply* m = list; m != nullptr; m = m->next)
      found.emplace_back(m->priority, absolute(m->host));
    ares_free_data(list);
    std::sort(found.begin(), found.end());
    std::set<std::string> provider_hosts;
    for (const Record& r : wanted) provider_hosts.insert(absolute(r.target));
    // Thunderbird takes the lowest-preference MX host (protocols.md §1.6, step 4).
    std::vector<std::string> elsewhere;
    for (const auto& [preference, host] : found) {
      if (preference != found.front().first) break;
      if (!provider_hosts.count(host)) elsewhere.push_back(host);
    }
    if (!elsewhere.empty()) {
      add(index, {Finding::MxElsewhere, name, "MX",
                  fmt::format("preferred MX {} is not a provider MX host ({}); Thunderbird's "
                              "MX-based lookup misses the provider",
                              join(elsewhere),
                              join(std::vector<std::string>(provider_hosts.begin(),
                                                            provider_hosts.end())))});
    }
    for (const auto& [preference, host] : found) check_target(index, name, "MX", host);
  }

  void check_cname(std::size_t index, const std::string& name, const std::vector<Record>& wanted,
                   const Reply& reply) {
    if (auto p = lookup_problem(reply, name, "CNAME")) return add(index, std::move(*p));
    std::vector<Record> found;
    for (const AnswerRecord& r : answer_records(reply.data, reply.length)) {
      if (r.type == ns_t_cname && r.owner == name)
        found.push_back({"", RecordType::Cname, 0, 0, 0, r.target});
    }
    if (found.empty()) return add(index, {Finding::Missing, name, "CNAME", "no CNAME record"});
    compare(index, name, "CNAME", wanted, found);
  }

  void compare(std::size_t index, const std::string& name, std::string_view type,
               const std::vector<Record>& wanted, const std::vector<Record>& found) {
    std::vector<std::string> want_text;
    std::vector<std::string> found_text;
    for (const Record& r : wanted) want_text.push_back(describe(r));
    for (const Record& r : found) found_text.push_back(describe(r));
    std::sort(want_text.begin(), want_text.end());
    std::sort(found_text.begin(), found_text.end());
    if (want_text == found_text) return;
    add(index, {Finding::Wrong, name, std::string(type),
                fmt::format("expected {}; found {}", join(want_text), join(found_text))});
  }

  // RFC 2782: the target MUST have address records and MUST NOT be an alias. One A lookup
  // per distinct target, shared by every domain that names it.
  void check_target(std::size_t index, const std::string& owner, std::string_view owner_type,
                    const std::string& target) {
    Waiter waiter{index, owner, std::string(owner_type)};
    auto [it, fresh] = targets_.try_emplace(target);
    TargetState& state = it->second;
    if (state.done) return report_target(waiter, target, state);
    state.waiting.push_back(std::move(waiter));
    if (!fresh) return;
    lookups_.query(target, ns_t_a, [this, target](const Reply& reply) {
      TargetState& s = targets_.at(target);
      s.done = true;
      if (auto p = lookup_problem(reply, target, "A")) {
        s.problem = std::move(p);
      } else {
        for (const AnswerRecord& r : answer_records(reply.data, reply.length)) {
          if (r.type == ns_t_cname && r.owner == target) s.alias_of = r.target;
        }
      }
      for (const Waiter& w : s.waiting) report_target(w, target, s);
      s.waiting.clear();
    });
  }

  struct Waiter {
    std::size_t index;
    std::string owner;
    std::string owner_type;
  };
  struct TargetState {
    bool done = false;
    std::vector<Waiter> waiting;
    std::string alias_of;            // non-empty: the target is a CNAME to this
    std::optional<Problem> problem;  // the A lookup failed or found nothing
  };

  void report_target(const Waiter& w, const std::string& target, const TargetState& state) {
    if (!state.alias_of.empty()) {
      const char* rule = w.owner_type == "MX" ? "RFC 2181 §10.3" : "RFC 2782";
      add(w.index, {Finding::CnameTarget, w.owner, w.owner_type,
                    fmt::format("target {} is a CNAME (to {}); {} forbids aliases as {} targets",
                                target, state.alias_of, rule, w.owner_type)});
    } else if (state.problem && state.problem->finding == Finding::Missing &&
               state.problem->detail.find("NXDOMAIN") != std::string::npos) {
      add(w.index, {Finding::Missing, w.owner, w.owner_type,
                    fmt::format("target {} does not exist (NXDOMAIN)", target)});
    } else if (state.problem && state.problem->finding != Finding::Missing) {
      add(w.index, {state.problem->finding, w.owner, w.owner_type,
                    fmt::format("looking up target {}: {}", target, state.problem->detail)});
    }
  }

  const Config& config_;
  Lookups& lookups_;
  std::vector<DomainReport>& reports_;
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::vector<Record>> expected_;
  std::unordered_map<std::string, TargetState> targets_;
};

struct AresLibrary {
  AresLibrary() { ares_library_init(ARES_LIB_INIT_ALL); }
  ~AresLibrary() { ares_library_cleanup(); }
};

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

}  // namespace

std::optional<ResolverAddress> parse_resolver(std::string_view text) {
  ResolverAddress out;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    out.ip = std::string(text.substr(1, close - 1));
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
      if (port.empty()) return std::nullopt;
    }
    in6_addr v6{};
    if (inet_pton(AF_INET6, out.ip.c_str(), &v6) != 1) return std::nullopt;
  } else if (in6_addr v6{}; inet_pton(AF_INET6, std::string(text).c_str(), &v6) == 1) {
    out.ip = std::string(text);
  } else {
    const auto colon = text.find(':');
    out.ip = std::string(text.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = text.substr(colon + 1);
      if (port.empty()) return std::nullopt;
    }
    in_addr v4{};
    if (inet_pton(AF_INET, out.ip.c_str(), &v4) != 1) return std::nullopt;
  }
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
      return std::nullopt;
    out.port = static_cast<std::uint16_t>(value);
  }
  return out;
}

std::string_view to_string(Finding finding) {
  switch (finding) {
    case Finding::Missing:
      return "missing";
    case Finding::Wrong:
      return "wrong";
    case Finding::CnameTarget:
      return "cname-target";
    case Finding::MxElsewhere:
      return "mx-elsewhere";
    case Finding::Timeout:
      return "timeout";
    case Finding::ServFail:
      return "servfail";
    case Finding::LookupError:
      return "lookup-error";
  }
  return "?";
}

CheckResult check(const Config& config, const std::vector<std::string>& domains,
                  const CheckOptions& options) {
  static AresLibrary library;
  CheckResult result;
  Lookups lookups;
  result.error = lookups.init(options);
  if (!result.error.empty()) return result;
  for (const std::string& d : domains) result.domains.push_back({d, {}});
  Checker checker(config, lookups, result.domains);
  for (std::size_t i = 0; i < result.domains.size(); ++i) checker.start(i);
  lookups.run();
  for (DomainReport& report : result.domains) {
    std::sort(report.problems.begin(), report.problems.end(),
              [](const Problem& a, const Problem& b) {
                return std::tie(a.name, a.type, a.finding, a.detail) <
                       std::tie(b.name, b.type, b.finding, b.detail);
              });
  }
  return result;
}

std::string format_table(const std::vector<DomainReport>& reports) {
  struct Row {
    std::string domain, result, record, detail;
  };
  std::vector<Row> rows;
  std::size_t bad = 0;
  for (const DomainReport& report : reports) {
    if (report.ok()) {
      rows.push_back({report.domain, "ok", "", ""});
      continue;
    }
    ++bad;
    for (const Problem& p : report.problems) {
      rows.push_back(
          {report.domain, std::string(to_string(p.finding)), p.name + " " + p.type, p.detail});
    }
  }
  std::size_t w_domain = 6, w_result = 6, w_record = 6;
  for (const Row& r : rows) {
    w_domain = std::max(w_domain, r.domain.size());
    w_result = std::max(w_result, r.result.size());
    w_record = std::max(w_record, r.record.size());
  }
  auto line = [&](const Row& r) {
    std::string text = fmt::format("{:<{}}  {:<{}}  {:<{}}  {}", r.domain, w_domain, r.result,
                                   w_result, r.record, w_record, r.detail);
    text.erase(text.find_last_not_of(' ') + 1);
    return text + "\n";
  };
  std::string out = line({"DOMAIN", "RESULT", "RECORD", "DETAIL"});
  for (const Row& r : rows) out += line(r);
  out += fmt::format("{} domains checked: {} ok, {} with problems\n", reports.size(),
                     reports.size() - bad, bad);
  return out;
}

std::string format_json(const std::vector<DomainReport>& reports) {
  std::size_t bad = 0;
  for (const DomainReport& r : reports) bad += r.ok() ? 0 : 1;
  std::string out = fmt::format("{{\"checked\":{},\"ok\":{},\"with_problems\":{},\"domains\":[",
                                reports.size(), reports.size() - bad, bad);
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const DomainReport& r = reports[i];
    out += fmt::format("{}\n{{\"domain\":{},\"ok\":{},\"problems\":[", i == 0 ? "" : ",",
                       json_string(r.domain), r.ok() ? "true" : "false");
    for (std::size_t j = 0; j < r.problems.size(); ++j) {
      const Problem& p = r.problems[j];
      out += fmt::format("{}{{\"problem\":{},\"name\":{},\"type\":{},\"detail\":{}}}",
                         j == 0 ? "" : ",", json_string(to_string(p.finding)), json_string(p.name),
                         json_string(p.type), json_string(p.detail));
    }
    out += "]}";
  }
  return out + "\n]}\n";
}

}  // namespace mailconfd::dns
