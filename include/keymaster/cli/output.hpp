#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace keymaster::cli {

//! A plain text table: columns padded to their widest cell; numeric columns right-aligned.
class Table {
public:
    explicit Table(std::vector<std::string> header, std::vector<bool> right_aligned = {});
    void add(std::vector<std::string> row);
    void print(std::ostream& os, const std::string& indent = "  ") const;
    bool empty() const { return rows_.empty(); }

private:
    std::vector<std::string> header_;
    std::vector<bool> right_;
    std::vector<std::vector<std::string>> rows_;
};

//! A runway for people, two units at most: "3d 4h", "5h 12m", "12m", "40s".
std::string format_runway(double seconds);

}  // namespace keymaster::cli
