#include "svg_chart.hpp"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

namespace policy_lab {
namespace {

/// One panel of bars: what it measures and how to draw it.
struct Panel {
  const char* title;
  std::function<double(const PolicyResult&)> value;
  const char* value_format;      // printf format of one value label
  double value_scale;            // value label = value * value_scale
  bool higher_is_better;
  std::optional<double> axis_max;   // fixed scale; otherwise from the data
  std::optional<double> reference;  // dashed line (e.g. 1.0 = perfectly even)
  const char* colour;
  const char* best_colour;
};

// Geometry, in SVG user units.
constexpr double kMargin = 20;
constexpr double kLabelWidth = 160;
constexpr double kPanelWidth = 250;
constexpr double kPanelGap = 40;
constexpr double kRowHeight = 24;
constexpr double kBarHeight = 16;
constexpr double kLineHeight = 16;

std::string xml_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string text_element(double x, double y, std::string_view text, std::string_view attrs = {}) {
  return "<text x=\"" + number(x) + "\" y=\"" + number(y) + "\"" + (attrs.empty() ? "" : " ") + std::string(attrs) + ">" +
         xml_escape(text) + "</text>\n";
}

std::string line_element(double x1, double y1, double x2, double y2, std::string_view attrs) {
  return "<line x1=\"" + number(x1) + "\" y1=\"" + number(y1) + "\" x2=\"" + number(x2) + "\" y2=\"" + number(y2) + "\" " +
         std::string(attrs) + "/>\n";
}

std::vector<Panel> panels() {
  return {
      {"p99 latency (ms), lower is better", [](const PolicyResult& r) { return r.latency.p99; }, "%.1f", 1, false,
       std::nullopt, std::nullopt, "#9ecae1", "#3182bd"},
      {"cache-hit ratio, higher is better", [](const PolicyResult& r) { return r.hit_ratio(); }, "%.1f%%", 100, true, 1.0,
       std::nullopt, "#a1d99b", "#31a354"},
      {"imbalance (max/mean load), 1 = even", [](const PolicyResult& r) { return r.imbalance(); }, "%.2f", 1, false,
       std::nullopt, 1.0, "#fdae6b", "#e6550d"},
  };
}

/// Index of the best result for `panel`.
std::size_t best_index(std::span<const PolicyResult> results, const Panel& panel) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < results.size(); ++i) {
    const double v = panel.value(results[i]);
    const double b = panel.value(results[best]);
    if (panel.higher_is_better ? v > b : v < b) best = i;
  }
  return best;
}

/// The value at the right edge of a panel. Data-driven panels leave headroom
/// for the value labels and cap the axis at four times the median, so one
/// outlier (a saturated backend's p99) does not flatten every other bar;
/// bars beyond the axis are drawn broken.
double axis_max(std::span<const PolicyResult> results, const Panel& panel) {
  if (panel.axis_max) return *panel.axis_max;
  std::vector<double> values;
  for (const auto& r : results) values.push_back(panel.value(r));
  std::sort(values.begin(), values.end());
  const double median = values.empty() ? 0 : values[values.size() / 2];
  const double top = std::max(panel.reference.value_or(0), std::min(values.empty() ? 0 : values.back(), 4 * median));
  return top > 0 ? top * 1.15 : 1;
}

/// Two white slashes across the end of a bar that runs past the axis.
std::string break_marker(double x_end, double y) {
  std::string out;
  for (double dx : {-14.0, -9.0}) {
    out += line_element(x_end + dx, y + kBarHeight + 2, x_end + dx + 5, y - 2, "stroke=\"white\" stroke-width=\"2\"");
  }
  return out;
}

/// One bar with its value label: after the bar, or inside its end when the
/// bar is broken (runs past the axis).
std::string render_bar(double x0, double y, double width, const char* colour, const char* label, bool bold, bool broken) {
  std::string out = "<rect x=\"" + number(x0) + "\" y=\"" + number(y) + "\" width=\"" + number(width) +
                    "\" height=\"" + number(kBarHeight) + "\" fill=\"" + colour + "\"/>\n";
  const std::string weight = bold ? " font-weight=\"bold\"" : "";
  if (broken) {
    out += break_marker(x0 + width, y);
    out += text_element(x0 + width - 18, y + kBarHeight - 3, label, "text-anchor=\"end\" fill=\"white\"" + weight);
  } else {
    out += text_element(x0 + width + 4, y + kBarHeight - 3, label, weight.empty() ? "" : weight.substr(1));
  }
  return out;
}

std::string render_panel(std::span<const PolicyResult> results, const Panel& panel, double x0, double y0) {
  std::string out = text_element(x0, y0 - 8, panel.title, "font-weight=\"bold\"");
  const double top = axis_max(results, panel);
  const std::size_t best = best_index(results, panel);
  for (std::size_t i = 0; i < results.size(); ++i) {
    const double v = panel.value(results[i]);
    const double width = std::clamp(kPanelWidth * v / top, 0.0, kPanelWidth);
    const double y = y0 + kRowHeight * static_cast<double>(i) + (kRowHeight - kBarHeight) / 2;
    char label[32];
    std::snprintf(label, sizeof label, panel.value_format, v * panel.value_scale);
    out += render_bar(x0, y, width, i == best ? panel.best_colour : panel.colour, label, i == best, v > top);
  }
  const double chart_bottom = y0 + kRowHeight * static_cast<double>(results.size());
  out += line_element(x0, y0, x0, chart_bottom, "stroke=\"#444\"");
  if (panel.reference) {
    const double x = x0 + kPanelWidth * *panel.reference / top;
    out += line_element(x, y0, x, chart_bottom, "stroke=\"#444\" stroke-dasharray=\"4 3\"");
  }
  return out;
}

std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    lines.push_back(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

}  // namespace

std::string render_svg(std::span<const PolicyResult> results, const std::string& caption) {
  const auto caption_lines = lines_of(caption);
  const auto all_panels = panels();
  const double width = 2 * kMargin + kLabelWidth + static_cast<double>(all_panels.size()) * (kPanelWidth + kPanelGap);
  const double chart_top = kMargin + 30 + kLineHeight * static_cast<double>(caption_lines.size()) + 30;
  const double height = chart_top + kRowHeight * static_cast<double>(results.size()) + kMargin;

  std::string out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + number(width) + "\" height=\"" + number(height) +
                    "\" viewBox=\"0 0 " + number(width) + " " + number(height) +
                    "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  out += text_element(kMargin, kMargin + 10, "userkey policy_lab: balancing policies on one simulated workload",
                      "font-size=\"16\" font-weight=\"bold\"");
  for (std::size_t i = 0; i < caption_lines.size(); ++i) {
    out += text_element(kMargin, kMargin + 30 + kLineHeight * static_cast<double>(i), caption_lines[i],
                        "xml:space=\"preserve\" fill=\"#555\" font-family=\"monospace\" font-size=\"11\"");
  }
  for (std::size_t i = 0; i < results.size(); ++i) {
    const double y = chart_top + kRowHeight * static_cast<double>(i) + kRowHeight / 2 + 4;
    out += text_element(kMargin + kLabelWidth - 8, y, results[i].policy, "text-anchor=\"end\"");
  }
  for (std::size_t p = 0; p < all_panels.size(); ++p) {
    const double x0 = kMargin + kLabelWidth + static_cast<double>(p) * (kPanelWidth + kPanelGap);
    out += render_panel(results, all_panels[p], x0, chart_top);
  }
  out += "</svg>\n";
  return out;
}

}  // namespace policy_lab
