// Test support: reads a Prometheus text exposition (format 0.0.4) the way a
// scraper would, and says what is wrong with it.
//
// Checked: every line is a HELP, a TYPE or a sample; names and label names
// are valid and label values quoted; each family has one HELP and one TYPE
// before its first sample and its samples are contiguous; values are numbers;
// a counter never ends with a negative value; per histogram series the `le`
// bounds ascend, the bucket counts are cumulative, the last bucket is +Inf
// and equals _count, and _sum is there. The text ends with a newline.
#pragma once

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace userkey::test {

struct Exposition {
  /// Family name -> type ("counter", "gauge", "histogram", ...).
  std::map<std::string, std::string> types;
  /// "name{labels}" (or "name" without labels) -> value, labels as written.
  std::map<std::string, double> samples;
  /// What is wrong, one message each; empty for a valid page.
  std::vector<std::string> errors;

  /// The value of `name` with exactly `labels` (as written, e.g. `code="200"`).
  std::optional<double> value(const std::string& name, const std::string& labels = {}) const {
    const auto it = samples.find(labels.empty() ? name : name + "{" + labels + "}");
    if (it == samples.end()) return std::nullopt;
    return it->second;
  }
  /// The sum of every sample of `name`, whatever its labels.
  double total(const std::string& name) const {
    double sum = 0;
    for (const auto& [key, v] : samples)
      if (key == name || key.rfind(name + "{", 0) == 0) sum += v;
    return sum;
  }
  std::string error_text() const {
    std::string out;
    for (const auto& e : errors) out += e + "\n";
    return out;
  }
};

namespace prometheus_detail {

inline bool valid_name(std::string_view s, bool metric) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    const bool ok = std::isalpha(c) || c == '_' || (metric && c == ':') || (i > 0 && std::isdigit(c));
    if (!ok) return false;
  }
  return true;
}

inline std::optional<double> parse_value(const std::string& s) {
  if (s == "+Inf") return HUGE_VAL;
  if (s == "-Inf") return -HUGE_VAL;
  if (s == "NaN") return NAN;
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

/// Splits `a="x",b="y"` into pairs; false when malformed.
inline bool parse_labels(std::string_view text, std::vector<std::pair<std::string, std::string>>& out) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto eq = text.find('=', i);
    if (eq == std::string_view::npos || eq + 1 >= text.size() || text[eq + 1] != '"') return false;
    std::string name(text.substr(i, eq - i));
    if (!valid_name(name, false)) return false;
    std::string value;
    std::size_t j = eq + 2;
    for (; j < text.size() && text[j] != '"'; ++j) {
      if (text[j] == '\\') {
        if (++j >= text.size()) return false;
        const char c = text[j];
        if (c != '\\' && c != '"' && c != 'n') return false;
        value += c == 'n' ? '\n' : c;
      } else {
        value += text[j];
      }
    }
    if (j >= text.size()) return false;
    out.emplace_back(std::move(name), std::move(value));
    i = j + 1;
    if (i < text.size()) {
      if (text[i] != ',') return false;
      ++i;
    }
  }
  return true;
}

}  // namespace prometheus_detail

inline Exposition parse_exposition(const std::string& text) {
  namespace d = prometheus_detail;
  Exposition e;
  auto fail = [&e](std::string why) { e.errors.push_back(std::move(why)); };
  if (text.empty() || text.back() != '\n') fail("the page does not end with a newline");

  std::set<std::string> helped, finished;
  std::string current;  // the family whose samples are being read
  // Histogram series (family + labels without le) -> (le, cumulative count) in order.
  std::map<std::string, std::vector<std::pair<double, double>>> buckets;
  std::map<std::string, double> counts;
  std::set<std::string> sums;

  std::size_t at = 0;
  while (at < text.size()) {
    auto eol = text.find('\n', at);
    if (eol == std::string::npos) eol = text.size();
    const std::string line = text.substr(at, eol - at);
    at = eol + 1;
    if (line.empty()) continue;
    if (line.rfind("# ", 0) == 0) {
      const auto sp1 = line.find(' ', 2);
      const std::string kw = line.substr(2, sp1 == std::string::npos ? std::string::npos : sp1 - 2);
      if (kw != "HELP" && kw != "TYPE") continue;  // a plain comment
      if (sp1 == std::string::npos) {
        fail("no metric name: " + line);
        continue;
      }
      const auto sp2 = line.find(' ', sp1 + 1);
      const std::string name = line.substr(sp1 + 1, sp2 == std::string::npos ? std::string::npos : sp2 - sp1 - 1);
      const std::string rest = sp2 == std::string::npos ? "" : line.substr(sp2 + 1);
      if (!d::valid_name(name, true)) fail("invalid metric name in: " + line);
      if (finished.count(name) || (!current.empty() && current != name && e.types.count(name)))
        fail(kw + " for " + name + " after its samples");
      if (kw == "HELP") {
        if (!helped.insert(name).second) fail("second HELP for " + name);
      } else {
        static const std::set<std::string> kTypes{"counter", "gauge", "histogram", "summary", "untyped"};
        if (!kTypes.count(rest)) fail("unknown type in: " + line);
        if (!e.types.emplace(name, rest).second) fail("second TYPE for " + name);
      }
      continue;
    }
    if (line[0] == '#') continue;
    // A sample: name[{labels}] value
    const auto brace = line.find('{');
    const auto space = line.find(' ');
    std::string name, labels, value;
    if (brace != std::string::npos && (space == std::string::npos || brace < space)) {
      const auto close = line.find("} ", brace);
      if (close == std::string::npos) {
        fail("unterminated labels: " + line);
        continue;
      }
      name = line.substr(0, brace);
      labels = line.substr(brace + 1, close - brace - 1);
      value = line.substr(close + 2);
    } else {
      if (space == std::string::npos) {
        fail("no value: " + line);
        continue;
      }
      name = line.substr(0, space);
      value = line.substr(space + 1);
    }
    if (const auto ts = value.find(' '); ts != std::string::npos) value = value.substr(0, ts);  // timestamp
    if (!d::valid_name(name, true)) fail("invalid metric name: " + line);
    std::vector<std::pair<std::string, std::string>> pairs;
    if (!d::parse_labels(labels, pairs)) fail("malformed labels: " + line);
    const auto v = d::parse_value(value);
    if (!v) {
      fail("value is not a number: " + line);
      continue;
    }
    // Its family: the name itself, or a histogram's name without its suffix.
    std::string family = name;
    std::string suffix;
    for (const char* s : {"_bucket", "_sum", "_count"}) {
      const std::string sfx = s;
      if (name.size() > sfx.size() && name.compare(name.size() - sfx.size(), sfx.size(), sfx) == 0) {
        const std::string base = name.substr(0, name.size() - sfx.size());
        if (e.types.count(base) && (e.types[base] == "histogram" || e.types[base] == "summary")) {
          family = base;
          suffix = sfx;
        }
      }
    }
    if (!e.types.count(family)) fail("sample before the TYPE of its family: " + line);
    if (!helped.count(family)) fail("sample before the HELP of its family: " + line);
    if (family != current) {
      if (!current.empty()) finished.insert(current);
      if (finished.count(family)) fail("samples of " + family + " are not contiguous");
      current = family;
    }
    const std::string key = labels.empty() ? name : name + "{" + labels + "}";
    if (!e.samples.emplace(key, *v).second) fail("duplicate sample: " + key);
    const auto type = e.types.count(family) ? e.types[family] : "";
    if (type == "counter" && !(*v >= 0)) fail("negative or NaN counter: " + line);
    if (type == "histogram") {
      std::string series = family + "{";
      std::optional<double> le;
      for (const auto& [ln, lv] : pairs) {
        if (ln == "le") le = d::parse_value(lv);
        else series += ln + "=\"" + lv + "\",";
      }
      series += "}";
      if (suffix == "_bucket") {
        if (!le) fail("bucket without a numeric le: " + line);
        else buckets[series].emplace_back(*le, *v);
      } else if (suffix == "_count") {
        counts[series] = *v;
      } else if (suffix == "_sum") {
        sums.insert(series);
      } else {
        fail("histogram sample without _bucket, _sum or _count: " + line);
      }
    }
  }
  for (const auto& [series, bs] : buckets) {
    for (std::size_t i = 1; i < bs.size(); ++i) {
      if (!(bs[i].first > bs[i - 1].first)) fail(series + ": le bounds do not ascend");
      if (bs[i].second < bs[i - 1].second) fail(series + ": bucket counts are not cumulative");
    }
    if (bs.empty() || !std::isinf(bs.back().first)) fail(series + ": no +Inf bucket last");
    else if (!counts.count(series)) fail(series + ": no _count");
    else if (counts[series] != bs.back().second) fail(series + ": +Inf bucket differs from _count");
    if (!sums.count(series)) fail(series + ": no _sum");
  }
  return e;
}

}  // namespace userkey::test
