// Logger setup, and the journal's priority prefix as a spdlog pattern flag.
#include "supervisor/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "supervisor/log_format.h"
#include "supervisor/systemd_env.h"

namespace sv {

spdlog::level::level_enum spdlog_level(LogLevel l) {
    switch (l) {
    case LogLevel::Debug: return spdlog::level::debug;
    case LogLevel::Info: return spdlog::level::info;
    case LogLevel::Warn: return spdlog::level::warn;
    case LogLevel::Error: return spdlog::level::err;
    }
    return spdlog::level::info;
}

namespace {

bool g_journal = false;

LogLevel our_level(spdlog::level::level_enum l) {
    switch (l) {
    case spdlog::level::trace:
    case spdlog::level::debug: return LogLevel::Debug;
    case spdlog::level::info: return LogLevel::Info;
    case spdlog::level::warn: return LogLevel::Warn;
    case spdlog::level::err:
    case spdlog::level::critical:
    case spdlog::level::off:
    case spdlog::level::n_levels: return LogLevel::Error;
    }
    return LogLevel::Info;
}


// "%*": the line's sd-daemon priority, "<N>".
class SdPriorityFlag : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        fmt::format_to(std::back_inserter(dest), "<{}>", sd_priority(our_level(msg.level)));
    }
    std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<SdPriorityFlag>(); }
};

// JOURNAL_STREAM is inherited by whatever we are run from: it counts only when it names
// our own stderr (sd-daemon(3): compare it with fstat(2) of the stream).
bool stderr_is_journal() {
    const char* js = std::getenv("JOURNAL_STREAM");
    struct stat st{};
    if (js == nullptr || ::fstat(STDERR_FILENO, &st) < 0) return false;
    return journal_stream_matches(js, st.st_dev, st.st_ino);
}

} // namespace

void init_logging(const std::string& level) {
    auto logger = spdlog::stderr_logger_st("supervisor");
    g_journal = stderr_is_journal();
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<SdPriorityFlag>('*');
    formatter->set_pattern(g_journal ? "%*%v" : "%Y-%m-%d %H:%M:%S.%e %-5l supervisor[%P]: %v");
    logger->set_formatter(std::move(formatter));
    logger->set_level(spdlog::level::from_str(level));
    logger->flush_on(spdlog::level::trace);
    spdlog::set_default_logger(logger);
}

bool logging_to_journal() { return g_journal; }

void log_worker_line(int priority, const std::string& text) {
    auto level = spdlog_level(level_of_sd_priority(priority));
    auto logger = spdlog::default_logger_raw();
    if (!logger->should_log(level)) return;
    if (!g_journal) {
        logger->log(level, "{}", text);
        return;
    }
    // Written through the same FILE* as the logger's sink (flushed after every line), so
    // the order of lines is kept.
    std::fprintf(stderr, "<%d>%s\n", priority, text.c_str());
    std::fflush(stderr);
}

void die_line(const std::string& what) {
    std::fprintf(stderr, "%ssupervisor: %s\n", g_journal ? "<3>" : "", what.c_str());
    std::fflush(stderr);
}

} // namespace sv
