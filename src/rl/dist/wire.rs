//! The little-endian wire format the ranks exchange: fixed-size values, and vectors as a
//! u64 length then their values, read back by a [`Reader`] that says where bytes ran out.

/// A value with a fixed little-endian encoding.
pub trait Raw: Copy {
    const SIZE: usize;
    fn put(self, out: &mut Vec<u8>);
    fn get(b: &[u8]) -> Self;
}

macro_rules! raw {
    ($($t:ty),*) => {$(
        impl Raw for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn get(b: &[u8]) -> Self {
                <$t>::from_le_bytes(b.try_into().expect("sized by SIZE"))
            }
        }
    )*};
}
raw!(u8, u32, u64, i64, f32, f64);

impl Raw for (u32, u32) {
    const SIZE: usize = 8;
    fn put(self, out: &mut Vec<u8>) {
        self.0.put(out);
        self.1.put(out);
    }
    fn get(b: &[u8]) -> Self {
        (u32::get(&b[..4]), u32::get(&b[4..]))
    }
}

pub fn put<T: Raw>(out: &mut Vec<u8>, v: &[T]) {
    (v.len() as u64).put(out);
    out.reserve(v.len() * T::SIZE);
    for &x in v {
        x.put(out);
    }
}

/// Reads what [`put`] and [`Raw::put`] wrote; errors say what ran out.
pub struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }
    /// Bytes not read yet (a whole message leaves none).
    pub fn rest(&self) -> usize {
        self.0.len()
    }
    pub fn bytes(&mut self, n: usize) -> Result<&[u8], String> {
        if self.0.len() < n {
            return Err(format!("ends early ({} bytes short)", n - self.0.len()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    pub fn one<T: Raw>(&mut self) -> Result<T, String> {
        Ok(T::get(self.bytes(T::SIZE)?))
    }
    pub fn vec<T: Raw>(&mut self) -> Result<Vec<T>, String> {
        let n = usize::try_from(self.one::<u64>()?).map_err(|e| e.to_string())?;
        let len = n.checked_mul(T::SIZE).ok_or("a length overflows")?;
        Ok(self.bytes(len)?.chunks_exact(T::SIZE).map(T::get).collect())
    }
}
