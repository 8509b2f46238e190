// SvgChart: policy_lab's results as a standalone SVG image (hand-written SVG
// text, no dependencies): three panels of horizontal bars, one bar per policy
// -- p99 latency, cache-hit ratio, load imbalance -- with the best policy of
// each panel highlighted.
#pragma once

#include <span>
#include <string>

#include "simulator.hpp"

namespace policy_lab {

/// The SVG document. `caption` (may contain '\n') is printed under the title;
/// it is XML-escaped.
std::string render_svg(std::span<const PolicyResult> results, const std::string& caption);

}  // namespace policy_lab
