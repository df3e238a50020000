#include "keymaster/cli/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace keymaster::cli {
namespace {

// %* : the message, escaped for a JSON string.
class JsonEscapedMessage final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        static constexpr char kHex[] = "0123456789abcdef";
        for (char c : msg.payload) {
            switch (c) {
                case '"': dest.append(std::string_view("\\\"")); break;
                case '\\': dest.append(std::string_view("\\\\")); break;
                case '\n': dest.append(std::string_view("\\n")); break;
                case '\r': dest.append(std::string_view("\\r")); break;
                case '\t': dest.append(std::string_view("\\t")); break;
                default:
                    if (static_cast<unsigned char>(c) < 0x20) {
                        const char esc[] = {'\\', 'u', '0', '0', kHex[(c >> 4) & 0xf], kHex[c & 0xf]};
                        dest.append(esc, esc + sizeof esc);
                    } else {
                        dest.push_back(c);
                    }
            }
        }
    }
    std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonEscapedMessage>(); }
};

}  // namespace

std::string setup_logging(const std::string& level, const std::string& format) {
    const auto lvl = spdlog::level::from_str(level);
    if (lvl == spdlog::level::off && level != "off")
        return "--log-level: unknown level '" + level + "' (trace, debug, info, warn, error, off)";
    if (format != "json" && format != "text") return "--log-format: expected text or json";
    auto logger = spdlog::get("keymaster");
    if (!logger) logger = spdlog::stderr_color_mt("keymaster");
    spdlog::set_default_logger(logger);
    spdlog::set_level(lvl);
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    if (format == "json") {
        formatter->add_flag<JsonEscapedMessage>('*').set_pattern(
            R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","msg":"%*"})");
    } else {
        formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ %v");
    }
    spdlog::set_formatter(std::move(formatter));
    return {};
}

}  // namespace keymaster::cli
