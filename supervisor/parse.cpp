// Parsing of durations and signal names.
#include "supervisor/parse.h"

#include <array>
#include <cctype>
#include <charconv>
#include <csignal>
#include <utility>

namespace sv {

namespace {

constexpr std::array<std::pair<std::string_view, int>, 30> kSignals{{
    {"HUP", SIGHUP},     {"INT", SIGINT},       {"QUIT", SIGQUIT},   {"ILL", SIGILL},
    {"TRAP", SIGTRAP},   {"ABRT", SIGABRT},     {"BUS", SIGBUS},     {"FPE", SIGFPE},
    {"USR1", SIGUSR1},   {"SEGV", SIGSEGV},     {"USR2", SIGUSR2},   {"PIPE", SIGPIPE},
    {"ALRM", SIGALRM},   {"TERM", SIGTERM},     {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD},
    {"CONT", SIGCONT},   {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN},   {"TTOU", SIGTTOU},
    {"URG", SIGURG},     {"XCPU", SIGXCPU},     {"XFSZ", SIGXFSZ},   {"VTALRM", SIGVTALRM},
    {"PROF", SIGPROF},   {"WINCH", SIGWINCH},   {"IO", SIGIO},       {"PWR", SIGPWR},
    {"SYS", SIGSYS},     {"KILL", SIGKILL},
}};

std::string upper(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

} // namespace

std::optional<int> parse_uint(std::string_view text) {
    int value = 0;
    if (text.empty()) return std::nullopt;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value < 0) return std::nullopt;
    return value;
}

std::optional<int> parse_mode(std::string_view text) {
    int value = 0;
    if (text.empty() || text.size() > 5) return std::nullopt;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 8);
    if (ec != std::errc{} || end != text.data() + text.size() || value < 0 || value > 07777) return std::nullopt;
    return value;
}

std::optional<Millis> parse_duration(std::string_view text) {
    size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) i++;
    std::string_view number = text.substr(0, i);
    std::string_view unit = text.substr(i);
    if (number.empty() || number.front() == '.' || number.back() == '.') return std::nullopt;
    double value = 0;
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (ec != std::errc{} || end != number.data() + number.size()) return std::nullopt;
    double scale = 0;
    if (unit == "ms") scale = 1;
    else if (unit == "s" || unit.empty()) scale = 1000;
    else if (unit == "m") scale = 60'000;
    else if (unit == "h") scale = 3'600'000;
    else return std::nullopt;
    double ms = value * scale;
    if (ms > 86'400'000.0) return std::nullopt;
    return Millis(static_cast<long long>(ms + 0.5));
}

std::optional<int> parse_signal(std::string_view text) {
    if (auto n = parse_uint(text)) {
        if (*n <= 0 || *n > SIGRTMAX || *n == SIGKILL || *n == SIGSTOP) return std::nullopt;
        return *n;
    }
    std::string name = upper(text);
    if (name.rfind("SIG", 0) == 0) name.erase(0, 3);
    for (const auto& [n, sig] : kSignals) {
        if (n == name) {
            if (sig == SIGKILL) return std::nullopt;
            return sig;
        }
    }
    return std::nullopt;
}

std::string signal_name(int sig) {
    for (const auto& [n, s] : kSignals)
        if (s == sig) return "SIG" + std::string(n);
    if (sig == SIGSTOP) return "SIGSTOP";
    return "SIG" + std::to_string(sig);
}

std::string format_duration(Millis d) {
    auto ms = d.count();
    if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
    if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

} // namespace sv
