// Moved to <userkey/backend/bson_file_repository.hpp> (the library's backend part); this
// header keeps code written against the flat layout compiling.
#pragma once
#include "userkey/backend/bson_file_repository.hpp"
