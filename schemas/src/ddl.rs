pub const MIGRATIONS: &[(u32, &str, &str)] = &[];
