//! `starmap`'s functions: a function of several arguments, called with the parts of a
//! tuple (Python's `f(*args)`).

/// A function that [`Pool::starmap`](super::Pool::starmap) calls with the parts of an
/// `Args` tuple: any `Fn(A) -> R`, `Fn(A, B) -> R`, … up to six arguments, with `Args`
/// the tuple `(A,)`, `(A, B)`, ….
///
/// Python: the function of `Pool.starmap(f, [(a, b), ...])`, called as `f(a, b)`.
pub trait StarFn<Args, R>: Send + Sync + 'static {
    /// Calls the function with the parts of `args`.
    fn call_with(&self, args: Args) -> R;
}

/// Implements [`StarFn`] for the functions of one arity.
macro_rules! star_fn {
    ($($arg:ident),+) => {
        impl<F, R, $($arg),+> StarFn<($($arg,)+), R> for F
        where
            F: Fn($($arg),+) -> R + Send + Sync + 'static,
        {
            #[allow(non_snake_case, reason = "the type parameters name the parts")]
            fn call_with(&self, ($($arg,)+): ($($arg,)+)) -> R {
                self($($arg),+)
            }
        }
    };
}

star_fn!(A);
star_fn!(A, B);
star_fn!(A, B, C);
star_fn!(A, B, C, D);
star_fn!(A, B, C, D, E);
star_fn!(A, B, C, D, E, G);
