#include "keymaster/cli/output.hpp"

#include <algorithm>
#include <iomanip>

namespace keymaster::cli {

Table::Table(std::vector<std::string> header, std::vector<bool> right_aligned)
    : header_(std::move(header)), right_(std::move(right_aligned)) {
    right_.resize(header_.size(), false);
}

void Table::add(std::vector<std::string> row) {
    row.resize(header_.size());
    rows_.push_back(std::move(row));
}

void Table::print(std::ostream& os, const std::string& indent) const {
    std::vector<std::size_t> width(header_.size());
    for (std::size_t c = 0; c < header_.size(); ++c) {
        width[c] = header_[c].size();
        for (const auto& r : rows_) width[c] = std::max(width[c], r[c].size());
    }
    auto line = [&](const std::vector<std::string>& cells) {
        std::string out = indent;
        for (std::size_t c = 0; c < cells.size(); ++c) {
            const std::string pad(width[c] - cells[c].size(), ' ');
            out += right_[c] ? pad + cells[c] : cells[c] + (c + 1 < cells.size() ? pad : "");
            if (c + 1 < cells.size()) out += "  ";
        }
        while (!out.empty() && out.back() == ' ') out.pop_back();
        os << out << '\n';
    };
    line(header_);
    for (const auto& r : rows_) line(r);
}

std::string format_runway(double seconds) {
    if (!(seconds < 1e12)) return "inf";  // beyond any horizon (and NaN)
    const auto s = static_cast<long long>(seconds);
    const long long d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60;
    if (d) return std::to_string(d) + "d" + (h ? " " + std::to_string(h) + "h" : "");
    if (h) return std::to_string(h) + "h" + (m ? " " + std::to_string(m) + "m" : "");
    if (m) return std::to_string(m) + "m";
    return std::to_string(s) + "s";
}

}  // namespace keymaster::cli
