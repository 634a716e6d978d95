// Logger setup.
#include "supervisor/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <cstdio>
#include <cstdlib>

namespace sv {

void init_logging(const std::string& level) {
    auto logger = spdlog::stderr_logger_st("supervisor");
    bool journal = std::getenv("JOURNAL_STREAM") != nullptr;
    logger->set_pattern(journal ? "%l %v" : "%Y-%m-%d %H:%M:%S.%e %-5l supervisor[%P]: %v");
    logger->set_level(spdlog::level::from_str(level));
    logger->flush_on(spdlog::level::trace);
    spdlog::set_default_logger(logger);
}

void die_line(const std::string& what) {
    std::fprintf(stderr, "supervisor: %s\n", what.c_str());
    std::fflush(stderr);
}

} // namespace sv
