// The PostgreSQL driver (libpq): see source/database.h.
#pragma once

#include <memory>
#include <string>

#include "source/database.h"

namespace mailconfd::source {

std::unique_ptr<Connection> connect_postgresql(const std::string& dsn, std::string& error);

}  // namespace mailconfd::source
